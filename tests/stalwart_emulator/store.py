"""Where the emulator keeps registry objects: SQLite (RocksDb/Sqlite datastores) or a real PostgreSQL database.

Both expose the same transaction API. SQLite is single-node: an in-memory copy of every object is authoritative and
written through. PostgreSQL is shared by every emulator node pointed at it: each transaction takes a global advisory
lock and reads the current rows, so uniqueness and sequential ids stay correct across nodes."""
import contextlib
import json
import os
import sqlite3
import threading

DDL = [
    "CREATE TABLE IF NOT EXISTS registry (type TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (type, id))",
    "CREATE TABLE IF NOT EXISTS counters (type TEXT PRIMARY KEY, next BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS nodes (hostname TEXT PRIMARY KEY, node_id BIGINT NOT NULL, renewed TEXT NOT NULL)",
]


class Tx:
    """A unit of work: objects read lazily per type, writes collected and flushed on commit."""

    def __init__(self, loader, types_loader):
        self._loader = loader
        self._types_loader = types_loader
        self.cache = {}
        self.dirty = {}
        self.counters = {}

    def all(self, obj_type):
        if obj_type not in self.cache:
            self.cache[obj_type] = self._loader(obj_type)
        return self.cache[obj_type]

    def types(self):
        """Every object type that has stored objects (for link checks on destroy)."""
        return sorted(set(self._types_loader()) | {t for t, objs in self.cache.items() if objs})

    def get(self, obj_type, obj_id):
        return self.all(obj_type).get(obj_id)

    def put(self, obj_type, obj_id, body):
        self.all(obj_type)[obj_id] = body
        self.dirty[(obj_type, obj_id)] = body

    def delete(self, obj_type, obj_id):
        self.all(obj_type).pop(obj_id, None)
        self.dirty[(obj_type, obj_id)] = None


class SqliteStore:
    def __init__(self, path):
        os.makedirs(path, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(path, "emulator.sqlite3"), check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        for stmt in DDL:
            self.db.execute(stmt)
        self.lock = threading.RLock()
        self.data = {}
        for obj_type, obj_id, body in self.db.execute("SELECT type, id, body FROM registry"):
            self.data.setdefault(obj_type, {})[obj_id] = json.loads(body)
        self.next = dict(self.db.execute("SELECT type, next FROM counters"))

    @contextlib.contextmanager
    def transaction(self):
        with self.lock:
            tx = Tx(lambda t: dict(self.data.get(t, {})), lambda: [t for t, objs in self.data.items() if objs])
            tx.next_id = lambda t: self._next(tx, t)
            yield tx
            self._commit(tx)

    def _next(self, tx, obj_type):
        value = tx.counters.get(obj_type, self.next.get(obj_type, 1))
        tx.counters[obj_type] = value + 1
        return value

    def _commit(self, tx):
        if not tx.dirty and not tx.counters:
            return
        with self.db:
            for (obj_type, obj_id), body in tx.dirty.items():
                if body is None:
                    self.data.get(obj_type, {}).pop(obj_id, None)
                    self.db.execute("DELETE FROM registry WHERE type=? AND id=?", (obj_type, obj_id))
                else:
                    self.data.setdefault(obj_type, {})[obj_id] = body
                    self.db.execute("INSERT OR REPLACE INTO registry VALUES (?, ?, ?)", (obj_type, obj_id, json.dumps(body)))
            for obj_type, value in tx.counters.items():
                self.next[obj_type] = value
                self.db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (obj_type, value))


class PostgresStore:
    LOCK_KEY = 0x57A1  # advisory lock shared by every emulator node on this database

    def __init__(self, conninfo):
        import psycopg  # imported only for this datastore

        self.psycopg = psycopg
        self.conninfo = conninfo
        self.local = threading.local()
        with self._conn() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))
                for stmt in DDL:
                    conn.execute(stmt)

    def _conn(self):
        conn = getattr(self.local, "conn", None)
        if conn is None or conn.closed:
            conn = self.psycopg.connect(**self.conninfo, autocommit=True)
            self.local.conn = conn
        return contextlib.nullcontext(conn)

    @contextlib.contextmanager
    def transaction(self):
        with self._conn() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.LOCK_KEY,))

                def load(obj_type):
                    rows = conn.execute("SELECT id, body FROM registry WHERE type=%s", (obj_type,)).fetchall()
                    return {obj_id: json.loads(body) for obj_id, body in rows}

                tx = Tx(load, lambda: [r[0] for r in conn.execute("SELECT DISTINCT type FROM registry").fetchall()])

                def next_id(obj_type):
                    if obj_type not in tx.counters:
                        row = conn.execute("SELECT next FROM counters WHERE type=%s", (obj_type,)).fetchone()
                        tx.counters[obj_type] = row[0] if row else 1
                    value = tx.counters[obj_type]
                    tx.counters[obj_type] = value + 1
                    return value

                tx.next_id = next_id
                yield tx
                for (obj_type, obj_id), body in tx.dirty.items():
                    if body is None:
                        conn.execute("DELETE FROM registry WHERE type=%s AND id=%s", (obj_type, obj_id))
                    else:
                        conn.execute("INSERT INTO registry VALUES (%s, %s, %s) ON CONFLICT (type, id) DO UPDATE SET body = EXCLUDED.body",
                                     (obj_type, obj_id, json.dumps(body)))
                for obj_type, value in tx.counters.items():
                    conn.execute("INSERT INTO counters VALUES (%s, %s) ON CONFLICT (type) DO UPDATE SET next = EXCLUDED.next",
                                 (obj_type, value))


def resolve_secret(secret):
    """SecretKeyOptional as the real server resolves it at use time."""
    if not secret:
        return None
    kind = secret.get("@type")
    if kind == "Value":
        return secret.get("secret")
    if kind == "EnvironmentVariable":
        return os.environ.get(secret.get("variableName", ""))
    if kind == "File":
        with open(secret["filePath"], encoding="utf-8") as handle:
            return handle.read().rstrip()
    return None


def open_store(datastore):
    kind = datastore.get("@type")
    if kind in ("RocksDb", "Sqlite"):
        return SqliteStore(datastore["path"])
    if kind == "PostgreSql":
        conninfo = {
            "host": datastore["host"], "port": int(datastore.get("port", 5432)),
            "dbname": datastore.get("database", "stalwart"), "user": datastore.get("authUsername", "stalwart"),
            "connect_timeout": max(1, int(datastore.get("timeout", 15000)) // 1000),
            "sslmode": ("require" if datastore.get("allowInvalidCerts") else "verify-full") if datastore.get("useTls") else "disable",
        }
        password = resolve_secret(datastore.get("authSecret"))
        if password:
            conninfo["password"] = password
        return PostgresStore(conninfo)
    raise ValueError("unsupported DataStore @type %r (the emulator supports RocksDb, Sqlite, PostgreSql)" % kind)
