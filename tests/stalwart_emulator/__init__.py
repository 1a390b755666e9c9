"""Emulator of Stalwart v0.16's management surface (JMAP registry at /jmap), owned by talentmesh.mail for tests."""
VERSION = "0.16.18-talentmesh-emulator"
