"""The CRD files come from .cache/upstream (scripts/fetch-upstream.sh, checksum-verified); fill it when absent."""
import os
import subprocess

import pytest

from tests.kubernetes import schemas


@pytest.fixture(scope="session", autouse=True)
def upstream_crds():
    if any(not os.path.isfile(os.path.join(schemas.crd_dir(), name)) for name in schemas.expected_crd_files()):
        subprocess.run(["bash", os.path.join(schemas.TOP, "scripts", "fetch-upstream.sh")], check=True)
    return schemas.crd_schemas()
