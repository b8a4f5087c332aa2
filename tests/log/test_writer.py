"""The writer: group commits, nothing lost while the DB is down, spool and replay."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from sqlalchemy import create_engine, func, select

from ia_continu.log.rows import LogRow
from ia_continu.log.writer import PredictionLogWriter, is_transient, sqlite_parts
from ia_continu.store.tables import PredictionLog


def _row(i: int) -> dict:
    now = datetime(2026, 1, 1, 12, 0, 0)
    return dict(
        request_id=f"r{i}",
        booking_id=None,
        driver_id=None,
        family="classification",
        features=[float(i), 0.0],
        prediction=1.0,
        confidence=0.9,
        risk_level=None,
        contributing_factors=None,
        model_version="1",
        latency_ms=0.1,
        decision="ml",
        served_by="ml",
        rollout_percentage=100.0,
        ml_prediction=1.0,
        fallback_prediction=None,
        created_at=now,
        updated_at=now,
    )


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(PredictionLog))


def test_group_commit_writes_every_row(engine):
    writer = PredictionLogWriter(engine, batch_size=64, flush_interval=0.01)
    writer.start()
    for i in range(1000):
        writer.submit([_row(i)])
    assert writer.flush(10)
    writer.stop()
    assert _count(engine) == 1000 and writer.written == 1000


def test_db_down_keeps_rows_then_spools_and_replays(engine, tmp_path):
    # A real unreachable database: nothing listens on this port.
    dead = create_engine(
        "postgresql+psycopg://x@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    writer = PredictionLogWriter(
        dead, batch_size=50, flush_interval=0.01, max_pending=1000, spool_dir=tmp_path / "spool"
    )
    writer.start()
    writer.submit([_row(i) for i in range(1500)])
    deadline = 0
    while writer.failed_flushes == 0 and deadline < 500:
        import time

        time.sleep(0.01)
        deadline += 1
    assert writer.last_error is not None  # health can say what is wrong
    writer.stop()  # DB still down: what is left goes to the spool, nothing is dropped
    assert writer.spooled == 1500
    assert sorted(p.suffix for p in (tmp_path / "spool").iterdir()) == [".jsonl"] * len(
        list((tmp_path / "spool").iterdir())
    )

    # The next writer that starts with a reachable DB replays the spool.
    replay = PredictionLogWriter(engine, spool_dir=tmp_path / "spool")
    replay.start()
    replay.stop()
    assert _count(engine) == 1500
    assert list((tmp_path / "spool").iterdir()) == []


@pytest.mark.parametrize("rows", [1, 7])
def test_flush_on_stop_with_long_window(engine, rows):
    writer = PredictionLogWriter(engine, batch_size=10_000, flush_interval=60)
    writer.start()
    writer.submit([_row(i) for i in range(rows)])
    writer.stop()
    assert _count(engine) == rows


# --- rows the database refuses: set aside, never retried forever -----------------------------

SURROGATE = "\ud800"  # what the JSON escape "\ud800" decodes to: no driver can encode it
NUL = "a\x00b"  # PostgreSQL text refuses it; SQLite stores it


def _bad(i: int, value: str) -> dict:
    return {**_row(i), "request_id": f"bad{i}", "booking_id": value}


def _dead_letter_lines(folder) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(folder.glob("*.jsonl"))
        for line in path.read_text(encoding="ascii").splitlines()
    ]


def _request_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(PredictionLog.request_id)).all())


def test_refused_rows_are_set_aside_and_the_rest_of_the_group_is_written(engine, tmp_path):
    refused_by_db = {"bad3", "bad40"} | (
        {"bad20"} if engine.dialect.name == "postgresql" else set()
    )
    writer = PredictionLogWriter(
        engine, batch_size=100, flush_interval=60, spool_dir=tmp_path / "spool"
    )
    writer.start()
    rows = [_row(i) for i in range(50)]
    rows[3], rows[20], rows[40] = _bad(3, SURROGATE), _bad(20, NUL), _bad(40, SURROGATE)
    writer.submit(rows)  # one group of 50: the edge is bypassed on purpose
    assert writer.flush(10)
    # The log is not stopped: later rows go through.
    writer.submit([_row(100)])
    assert writer.flush(10)
    writer.stop()

    expected = {r["request_id"] for r in rows} - refused_by_db | {"r100"}
    assert _request_ids(engine) == expected
    assert writer.written == len(expected) and writer.last_error is None
    assert writer.dead_lettered == writer.refused == len(refused_by_db)
    lines = _dead_letter_lines(tmp_path / "dead-letter")
    assert {line["row"]["request_id"] for line in lines} == refused_by_db
    by_id = {line["row"]["request_id"]: line for line in lines}
    assert by_id["bad3"]["row"]["booking_id"] == SURROGATE  # kept exactly, escaped in the file
    assert by_id["bad3"]["row"]["features"] == [3.0, 0.0]
    assert "UnicodeEncodeError" in by_id["bad3"]["error"]
    assert datetime.fromisoformat(by_id["bad3"]["at"]).tzinfo is not None
    if engine.dialect.name == "postgresql":
        assert "DataError" in by_id["bad20"]["error"] and "NUL" in by_id["bad20"]["error"]

    # The verdict survives a restart (counted from the files), until the files are moved away.
    again = PredictionLogWriter(engine, spool_dir=tmp_path / "spool")
    assert again.dead_lettered == len(refused_by_db)
    (tmp_path / "dead-letter").rename(tmp_path / "reviewed")
    assert again.dead_lettered == 0


def test_a_lone_refused_row_does_not_block_the_rows_behind_it(engine, tmp_path):
    writer = PredictionLogWriter(
        engine, batch_size=1, flush_interval=0.01, spool_dir=tmp_path / "spool"
    )
    writer.start()
    writer.submit([_bad(0, SURROGATE)])
    writer.submit([_row(i) for i in range(1, 6)])
    assert writer.flush(10)
    writer.stop()
    assert _request_ids(engine) == {f"r{i}" for i in range(1, 6)}
    assert writer.dead_lettered == 1 and writer.failed_flushes == 0


def _spool_file(folder, rows: list[dict], extra_lines: list[str] = ()) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, default=str) for row in rows] + list(extra_lines)
    (folder / "spool-1-1.jsonl").write_text("\n".join(lines) + "\n", encoding="ascii")


def test_spool_with_a_refused_row_replays_the_good_rows_and_sets_the_bad_aside(engine, tmp_path):
    spool = tmp_path / "spool"
    rows = [_row(i) for i in range(10)]
    rows[4] = _bad(4, SURROGATE)
    _spool_file(spool, rows, extra_lines=['["torn line'])
    writer = PredictionLogWriter(engine, spool_dir=spool)
    writer.start()
    writer.stop()
    assert _request_ids(engine) == {f"r{i}" for i in range(10) if i != 4}
    assert list(spool.iterdir()) == []  # replayed: nothing left silently
    lines = _dead_letter_lines(tmp_path / "dead-letter")
    assert [line.get("row", {}).get("request_id") for line in lines if "row" in line] == ["bad4"]
    assert [line["spool_line"] for line in lines if "spool_line" in line] == ['["torn line']
    assert writer.dead_lettered == 2 and writer.replay_failures == 1


def test_spool_replay_while_the_database_is_down_is_kept_and_reported(engine, tmp_path):
    spool = tmp_path / "spool"
    _spool_file(spool, [_row(i) for i in range(5)])
    dead = create_engine(
        "postgresql+psycopg://x@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    writer = PredictionLogWriter(dead, spool_dir=spool)
    writer.start()
    writer.stop()
    assert writer.replay_failures == 1 and "OperationalError" in writer.replay_error
    assert [p.name for p in spool.iterdir()] == ["spool-1-1.jsonl"]  # put back, whole
    assert writer.dead_lettered == 0  # a transient failure sets nothing aside

    replay = PredictionLogWriter(engine, spool_dir=spool)
    replay.start()
    replay.stop()
    assert _request_ids(engine) == {f"r{i}" for i in range(5)}
    assert replay.replay_error is None and list(spool.iterdir()) == []


def test_unwritable_sqlite_file_is_transient_retried_then_spooled(tmp_path):
    # A real fault: the database file's folder does not exist.
    missing = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'db.sqlite'}")
    writer = PredictionLogWriter(
        missing, batch_size=10, flush_interval=0.01, spool_dir=tmp_path / "spool"
    )
    writer.start()
    writer.submit([_row(i) for i in range(3)] + [_bad(3, SURROGATE)])
    deadline = time.monotonic() + 5
    while writer.failed_flushes < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.stop()
    assert writer.failed_flushes >= 2  # retried, not set aside
    assert "OperationalError" in writer.last_error
    assert writer.dead_lettered == 0 and writer.spooled == 4


def test_errors_are_classified_on_real_failures(engine):
    from sqlalchemy import text

    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    def error_of(statement: str, params: tuple | None = None) -> Exception:
        with pytest.raises(Exception) as info, engine.begin() as conn:
            conn.exec_driver_sql(statement, params)
        return info.value

    assert not is_transient(error_of(f"SELECT {mark}", (SURROGATE,)))
    if engine.dialect.name == "postgresql":
        assert not is_transient(error_of(f"SELECT CAST({mark} AS text)", (NUL,)))
        assert is_transient(error_of("SELECT * FROM no_such_table"))  # schema, not a row
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    dead = create_engine(
        "postgresql+psycopg://x@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    with pytest.raises(Exception) as info, dead.connect():
        pass
    assert is_transient(info.value)


def test_rows_keep_their_schema_id_and_older_spool_lines_replay_without_one(engine, tmp_path):
    from ia_continu.log.rows import COLUMNS, LogRow

    spool = tmp_path / "spool"
    spool.mkdir()
    # A line spooled before rows carried schema_id: one column fewer, in the old order.
    row = LogRow.from_mapping(_row(1))
    old = [v for name, v in zip(COLUMNS, row, strict=True) if name != "schema_id"]
    (spool / "spool-1-1.jsonl").write_text(json.dumps(old, default=str) + "\n", encoding="ascii")
    writer = PredictionLogWriter(engine, spool_dir=spool)
    writer.start()
    writer.submit([{**_row(2), "schema_id": 7}])
    assert writer.flush(10)
    writer.stop()
    with engine.connect() as conn:
        got = dict(conn.execute(select(PredictionLog.request_id, PredictionLog.schema_id)).all())
    assert got == {"r1": None, "r2": 7}
    assert writer.replay_failures == 0 and list(spool.iterdir()) == []


def test_timestamps_read_back_as_written_whole_seconds_and_microseconds(engine):
    from datetime import UTC

    times = [
        datetime(2026, 1, 1, 12, 0, 0),  # no microseconds: still the fixed-width text
        datetime(2026, 1, 1, 12, 0, 0, 7),
        datetime(2026, 1, 1, 12, 0, 0, 999999, tzinfo=UTC),  # an aware time: its UTC fields
    ]
    writer = PredictionLogWriter(engine, batch_size=8, flush_interval=0.01)
    writer.start()
    writer.submit([_row(i) | {"created_at": t, "updated_at": t} for i, t in enumerate(times)])
    assert writer.flush(10)
    writer.stop()
    with engine.connect() as conn:
        stored = conn.execute(select(PredictionLog.created_at).order_by(PredictionLog.id)).all()
        # Ordered by time as text too (SQLite compares the stored strings).
        ordered = conn.execute(
            select(PredictionLog.request_id).order_by(PredictionLog.created_at)
        ).scalars()
        assert list(ordered) == ["r0", "r1", "r2"]
    assert [row[0].replace(tzinfo=None) for row in stored] == [
        t.replace(tzinfo=None) for t in times
    ]


def test_a_batch_larger_than_one_sqlite_statement_is_written_whole_and_in_order(engine):
    # SQLite takes a batch as INSERTs of at most 500 VALUES rows each, in one transaction.
    writer = PredictionLogWriter(engine, batch_size=1300, flush_interval=0.5)
    writer.start()
    writer.submit([_row(i) for i in range(1300)])
    assert writer.flush(20)
    writer.stop()
    assert _count(engine) == 1300 and writer.written == 1300
    with engine.connect() as conn:
        ids = conn.execute(select(PredictionLog.request_id).order_by(PredictionLog.id)).scalars()
        assert list(ids) == [f"r{i}" for i in range(1300)]


# --- memory: what the writer holds stays bounded -----------------------------------------------


def test_sqlite_parts_cover_every_row_in_few_statement_sizes():
    seen: set[int] = set()
    for n in range(0, 2001):
        parts = sqlite_parts(n)
        assert sum(parts) == n and all(0 < p <= 500 for p in parts)
        assert parts == sorted(parts, reverse=True)  # rows keep their order: sizes only
        seen.update(parts)
    assert seen == {500} | {1 << k for k in range(9)}  # 10 statements, whatever the batches


def test_batches_of_every_size_are_written_whole_with_a_bounded_set_of_statements(engine):
    # Under load the writer's batches take any size up to batch_size: each distinct size was
    # a statement SQLite compiled and kept (~1.5 MB for 500 rows). Every row is written, in
    # order, and the statements stay the 10 sizes of sqlite_parts.
    writer = PredictionLogWriter(engine)
    start = 0
    for n in range(1, 531, 7):  # 76 sizes from 1 to 526
        batch = [LogRow.from_mapping(_row(i)) for i in range(start, start + n)]
        writer._write(batch)
        start += n
    assert len(writer._sqlite_statements) <= 10
    with engine.connect() as conn:
        ids = conn.execute(select(PredictionLog.request_id).order_by(PredictionLog.id)).scalars()
        assert list(ids) == [f"r{i}" for i in range(start)]


class _Chunk:
    """A call's answers as the writer gets them: rows built on demand, in its thread."""

    def __init__(self, first: int, n: int, built: list[int], writer: PredictionLogWriter) -> None:
        self.first, self.n, self.built, self.writer = first, n, built, writer

    def __len__(self) -> int:
        return self.n

    def rows(self) -> list[LogRow]:
        # Rows built so far and not yet written, this chunk's included.
        self.built.append(self.first + self.n - self.writer.written)
        return [LogRow.from_mapping(_row(i)) for i in range(self.first, self.first + self.n)]


def test_a_backlog_of_calls_is_built_into_rows_a_batch_at_a_time(engine):
    # 40 calls of 250 rows wait when the writer starts: it builds the rows of the next batch
    # only (the rest stay as the calls' compact answers), and still writes every row in order.
    writer = PredictionLogWriter(engine, batch_size=500, flush_interval=0.01)
    built: list[int] = []
    for k in range(40):
        writer.submit_chunk(_Chunk(250 * k, 250, built, writer))
    writer.start()
    assert writer.flush(30)
    writer.stop()
    assert writer.written == 10_000 and len(built) == 40
    assert max(built) <= 500 + 250  # one batch, and the call that completes it
    with engine.connect() as conn:
        ids = conn.execute(select(PredictionLog.request_id).order_by(PredictionLog.id)).scalars()
        assert list(ids) == [f"r{i}" for i in range(10_000)]


def test_db_down_spools_answers_not_yet_built_past_max_pending(engine, tmp_path):
    # The bound counts every row waiting, built or still a call's answers: with the database
    # down, the rows past max_pending go to the spool while the writer runs; none is lost.
    dead = create_engine(
        "postgresql+psycopg://x@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    spool = tmp_path / "spool"
    writer = PredictionLogWriter(
        dead, batch_size=50, flush_interval=0.01, max_pending=1000, spool_dir=spool
    )
    built: list[int] = []
    for k in range(30):
        writer.submit_chunk(_Chunk(100 * k, 100, built, writer))
    writer.start()
    for _ in range(1000):
        if writer.spooled:
            break
        time.sleep(0.01)
    assert writer.spooled == 2000  # spooled while running: 3,000 waiting, 1,000 kept
    writer.stop()
    assert writer.spooled == 3000 and writer.lost == 0
    replay = PredictionLogWriter(engine, spool_dir=spool)
    replay.start()
    replay.stop()
    assert _request_ids(engine) == {f"r{i}" for i in range(3000)}


def test_a_missing_log_table_is_waited_for_not_dead_lettered(engine, tmp_path):
    # PostgreSQL's rows go through COPY, whose errors arrive unwrapped by SQLAlchemy: a missing
    # table (an operator's fix, not a row's fault) must still read as transient there.
    def rename(old: str, new: str) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE {old} RENAME TO {new}")

    rename("prediction_log", "prediction_log_away")
    writer = PredictionLogWriter(
        engine, batch_size=10, flush_interval=0.01, spool_dir=tmp_path / "spool"
    )
    writer.start()
    try:
        writer.submit([_row(i) for i in range(5)])
        deadline = time.monotonic() + 10
        while writer.failed_flushes == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert writer.failed_flushes >= 1 and writer.pending == 5
        assert writer.refused == 0 and writer.dead_lettered == 0
    finally:
        rename("prediction_log_away", "prediction_log")
    assert writer.flush(30)
    writer.stop()
    assert _request_ids(engine) == {f"r{i}" for i in range(5)}
    assert writer.written == 5 and writer.last_error is None


def test_a_writer_behind_a_healthy_database_spools_past_max_pending_then_replays(engine, tmp_path):
    # The database answers, but 3,500 rows wait when the writer starts (bound: 1,000): the
    # newest are spooled rather than held in memory, and replayed once the backlog is under
    # half the bound. Every row ends in the database once, none lost.
    spool = tmp_path / "spool"
    writer = PredictionLogWriter(
        engine, batch_size=100, flush_interval=0.01, max_pending=1000, spool_dir=spool
    )
    built: list[int] = []
    writer.submit([_row(i) for i in range(500)])  # built rows (the oldest)
    for k in range(30):  # then 30 calls of 100 rows, still as their answers
        writer.submit_chunk(_Chunk(500 + 100 * k, 100, built, writer))
    writer.start()
    assert writer.flush(60)
    writer.stop()
    # After the first batch of 100, 3,400 waited: the 24 newest calls went to the spool.
    assert writer.spooled == 2400 and writer.lost == 0 and writer.refused == 0
    assert writer.written == 3500
    assert sorted(spool.glob("spool-*")) == []  # replayed, nothing left behind
    with engine.connect() as conn:
        ids = conn.execute(select(PredictionLog.request_id)).scalars().all()
    assert len(ids) == 3500 and set(ids) == {f"r{i}" for i in range(3500)}


class _CopyRecorder(PredictionLogWriter):
    """The real writer, noting which COPY form each attempt used and whether it went in."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.copies: list[tuple[bool, bool]] = []  # (binary, written)

    def _copy(self, rows, *, binary):
        try:
            super()._copy(rows, binary=binary)
        except Exception:
            self.copies.append((binary, False))
            raise
        self.copies.append((binary, True))


def test_postgresql_rows_go_by_binary_copy_and_what_it_refuses_by_text_copy(engine, tmp_path):
    from datetime import UTC

    if engine.dialect.name != "postgresql":
        pytest.skip("COPY is the PostgreSQL path; SQLite writes INSERT statements")
    writer = _CopyRecorder(engine, batch_size=500, flush_interval=0.01, spool_dir=tmp_path / "s")
    writer.start()
    writer.submit([_row(i) for i in range(3)])
    assert writer.flush(10)
    assert writer.copies == [(True, True)]
    # Values PostgreSQL reads from text but binary COPY cannot send as its column's type: a
    # number as a string, a timestamp with a zone (text COPY drops the zone, as before).
    aware = datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=UTC)
    writer.submit(
        [_row(3) | {"prediction": "2.5"}, _row(4) | {"created_at": aware, "updated_at": aware}]
    )
    assert writer.flush(10)
    writer.stop()
    assert writer.copies[1:] == [(True, False), (False, True)]
    assert writer.refused == 0 and writer.dead_lettered == 0
    with engine.connect() as conn:
        got = dict(conn.execute(select(PredictionLog.request_id, PredictionLog.prediction)).all())
        stamp = conn.scalar(
            select(PredictionLog.created_at).where(PredictionLog.request_id == "r4")
        )
    assert got == {"r0": 1.0, "r1": 1.0, "r2": 1.0, "r3": 2.5, "r4": 1.0}
    assert stamp == aware.replace(tzinfo=None)
