"""Scale benchmark: whole `safety-monitor replay` processes (delivery included) at growing sizes, each into a fresh
database; the rate at each size, the process's peak RSS and the database's size.

The input is a mix with many abnormal values, unlike bench_replay.py's: 1,000 subjects reporting side by side,
about 63 % labs (a third of them out of range, many gradable), 20 % vital signs (blood pressure pairs, some at
grade 3), 15 % adverse events (a quarter of them follow-ups of the subject's last AE), the rest ECGs and the
subjects' enrolment and first doses. It is written line by line to a file (never held in memory), then replayed
by a separate process, as a site's export would be. Whether the cost stays flat as the store grows shows in the
rate column: the goal is rate(400k) >= 0.8 x rate(50k).

    python bench/bench_scale.py                      # 50k, 200k, 400k on SQLite
    python bench/bench_scale.py --sizes 20000        # a quick look
    python bench/bench_scale.py --million            # adds 1,000,000
    python bench/bench_scale.py --database-url postgresql://postgres@127.0.0.1:5432/test   # a fresh schema each
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDY_ID = "ALTER-ICI-01"
ARM = "ANLOTINIB+ICI"
SITES = ("CN001", "CN002", "CN003", "CN004", "CN005")
MESSAGES_PER_TRIAL_DAY = 1_000  # about one message per subject per day, whatever the size


@dataclass(frozen=True, slots=True)
class Lab:
    code: str
    unit: str
    low: float
    high: float
    specimen: str
    decimals: int
    direction: str  # which way an abnormal value goes: "high", "low" or "both"


LABS = (
    Lab("ALT", "U/L", 7, 40, "SERUM", 0, "high"),
    Lab("AST", "U/L", 13, 35, "SERUM", 0, "high"),
    Lab("BILI", "umol/L", 3.4, 20.5, "SERUM", 1, "high"),
    Lab("ALP", "U/L", 35, 100, "SERUM", 0, "high"),
    Lab("CREAT", "umol/L", 53, 97, "SERUM", 0, "high"),
    Lab("PLAT", "10^9/L", 125, 350, "BLOOD", 0, "low"),
    Lab("NEUT", "10^9/L", 1.8, 6.3, "BLOOD", 2, "low"),
    Lab("HGB", "g/L", 115, 150, "BLOOD", 0, "low"),
    Lab("K", "mmol/L", 3.5, 5.3, "SERUM", 1, "both"),
    Lab("SODIUM", "mmol/L", 137, 147, "SERUM", 0, "both"),
    Lab("TSH", "mU/L", 0.27, 4.2, "SERUM", 2, "high"),
)
# (MedDRA PT, SOC, verbatim): terms the trial's rules watch, and some they do not
AE_TERMS = (
    ("Hypertension", "Vascular disorders", "high blood pressure"),
    ("Palmar-plantar erythrodysaesthesia syndrome", "Skin and subcutaneous tissue disorders", "hand-foot syndrome"),
    ("Diarrhoea", "Gastrointestinal disorders", "diarrhoea"),
    ("Fatigue", "General disorders and administration site conditions", "tiredness"),
    ("Proteinuria", "Renal and urinary disorders", "protein in urine"),
    ("Decreased appetite", "Metabolism and nutrition disorders", "poor appetite"),
    ("Hypothyroidism", "Endocrine disorders", "hypothyroidism"),
    ("Haemoptysis", "Respiratory, thoracic and mediastinal disorders", "coughing up blood"),
    ("Pneumonitis", "Respiratory, thoracic and mediastinal disorders", "pneumonitis"),
    ("Rash", "Skin and subcutaneous tissue disorders", "rash"),
)


def lab_value(rng: random.Random, lab: Lab) -> float:
    """In range two times in three; otherwise out of range, often far enough to reach CTCAE grade 2-4."""
    if rng.random() < 2 / 3:
        value = lab.low + (lab.high - lab.low) * rng.random()
    else:
        direction = lab.direction if lab.direction != "both" else rng.choice(("high", "low"))
        value = lab.high * (1 + 9 * rng.random() ** 2) if direction == "high" else lab.low * (0.2 + 0.8 * rng.random())
    rounded = round(value, lab.decimals)
    return int(rounded) if lab.decimals == 0 else rounded


def generate(path: Path, messages: int, subjects: int, seed: int) -> Counter[str]:
    """Write `messages` wire messages to `path`, one per line, in sent_at order; returns the count by type."""
    rng = random.Random(seed)  # reproducible synthetic data, not security
    stem = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-scale:{seed}").hex
    id_prefix = f"{stem[:8]}-{stem[8:12]}-{stem[12:16]}-{stem[16:20]}-"
    encode = json.JSONEncoder(check_circular=False).encode
    # The trial ends the day before yesterday, whatever the size: the pipeline refuses a message sent more than
    # a day after its receiving clock, and a fixed first day put most of 400,000 messages in the future.
    first_day = date.today() - timedelta(days=messages // MESSAGES_PER_TRIAL_DAY + 2)
    enrolled: set[int] = set()
    baseline_done: set[tuple[int, str]] = set()
    ae_count: Counter[int] = Counter()
    last_ae: dict[int, dict[str, object]] = {}
    counts: Counter[str] = Counter()
    n = 0

    with path.open("w", encoding="utf-8", newline="\n") as sink:

        def emit(message: dict[str, object]) -> None:
            nonlocal n
            n += 1
            counts[str(message["msg_type"])] += 1
            message["msg_id"] = f"{id_prefix}{n:012x}"
            sink.write(encode(message))
            sink.write("\n")

        while n < messages:
            day = first_day + timedelta(days=n // MESSAGES_PER_TRIAL_DAY)
            seconds = 8 * 3600 + (n % MESSAGES_PER_TRIAL_DAY) * 36  # 08:00 to 18:00 across the day
            dtc = f"{day.isoformat()}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}"
            sent_at = f"{dtc}:{seconds % 60:02d}+08:00"
            s = rng.randrange(subjects)
            site = SITES[s % len(SITES)]
            usubjid = f"{STUDY_ID}-{site}-{s:04d}"
            base = {"sent_at": sent_at, "site_id": site, "record_version": 1, "STUDYID": STUDY_ID, "USUBJID": usubjid}
            if s not in enrolled:
                enrolled.add(s)
                for event, drug in (("ENROLLED", None), ("FIRST_DOSE", "ANLOTINIB"), ("FIRST_DOSE", "ICI")):
                    if n < messages:
                        emit(
                            {"msg_type": "SUBJECT", **base, "EVENT": event, "EVENTDTC": day.isoformat()}
                            | {"ARM": ARM, "DRUG": drug, "REASON": None}
                        )
                continue
            draw = rng.random()
            # per draw: a lab 70 %, a blood pressure pair 11.1 % (two messages), an AE 16.7 %, an ECG 2.2 %,
            # i.e. 63 / 20 / 15 / 2 % of the messages besides enrolments
            if draw < 0.70:
                lab = LABS[rng.randrange(len(LABS))]
                first = (s, lab.code) not in baseline_done
                baseline_done.add((s, lab.code))
                value = round(lab.low + (lab.high - lab.low) * rng.random(), lab.decimals) if first else None
                emit(
                    {"msg_type": "LB", **base, "LBTESTCD": lab.code}
                    | {"LBSTRESN": value if value is not None else lab_value(rng, lab), "LBSTRESU": lab.unit}
                    | {"LBSTNRLO": lab.low, "LBSTNRHI": lab.high, "LBNRIND": None, "LBBLFL": "Y" if first else None}
                    | {"LBDTC": dtc, "VISIT": "BASELINE" if first else "UNSCHEDULED", "LBSPEC": lab.specimen}
                )
            elif draw < 0.8111:  # one in eight at grade 3
                high = rng.random() < 0.125
                sbp = 160 + rng.randrange(30) if high else 105 + rng.randrange(50)
                dbp = 100 + rng.randrange(15) if high else 65 + rng.randrange(30)
                for code, value in (("SYSBP", sbp), ("DIABP", dbp)):
                    if n < messages:
                        emit(
                            {"msg_type": "VS", **base, "VSTESTCD": code, "VSSTRESN": value}
                            | {"VSSTRESU": "mmHg", "VSDTC": dtc, "VSBLFL": None}
                        )
            elif draw < 0.9778:
                previous = last_ae.get(s)
                if previous is not None and rng.random() < 0.25:  # a follow-up closing the subject's last AE
                    ae = previous | base | {"record_version": int(str(previous["record_version"])) + 1}
                    ae |= {"AEENDTC": day.isoformat(), "AEOUT": "RECOVERED/RESOLVED"}
                    del last_ae[s]
                else:
                    decod, soc, verbatim = AE_TERMS[rng.randrange(len(AE_TERMS))]
                    ae_count[s] += 1
                    grade = rng.choices((1, 2, 3, 4), (50, 30, 17, 3))[0]
                    serious = "Y" if grade >= 3 else "N"
                    ae = {"msg_type": "AE", **base, "AESPID": f"AE-{ae_count[s]}", "AETERM": verbatim}
                    ae |= {"AEDECOD": decod, "AEBODSYS": soc, "AETOXGR": grade, "AESER": serious}
                    ae |= {"AESHOSP": serious, "AESDTH": "N", "AESLIFE": "Y" if grade == 4 else "N"}
                    ae |= {"AESTDTC": day.isoformat(), "AEENDTC": None, "AEOUT": "NOT RECOVERED/NOT RESOLVED"}
                    ae |= {"AEREL_ANLOTINIB": "POSSIBLE", "AEREL_ICI": "UNLIKELY"}
                    ae |= {"AEACN_ANLOTINIB": "DOSE NOT CHANGED", "AEACN_ICI": "DOSE NOT CHANGED", "AEIRAE": "N"}
                    last_ae[s] = ae
                emit(dict(ae))
            else:
                emit(
                    {"msg_type": "EG", **base, "EGTESTCD": "QTCF", "EGSTRESN": 390 + rng.randrange(120)}
                    | {"EGSTRESU": "ms", "EGDTC": dtc, "EGBLFL": None}
                )
    return counts


@dataclass(frozen=True, slots=True)
class Run:
    messages: int
    seconds: float
    peak_rss_mb: float
    database_mb: float | None
    load: float
    output: str

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def replay_rate(self) -> str:
        """The rate the replay itself reports ("messages processed: N in S s (R msg/s)")."""
        found = re.search(r"messages processed:.*\(([\d,]+) msg/s\)", self.output)
        return found.group(1) if found else "?"

    @property
    def dead_lettered(self) -> int:
        """Messages the replay refused: every generated message is valid, so any is a fault of the generator."""
        found = re.search(r"dead-lettered:\s+(\d+)", self.output)
        return int(found.group(1)) if found else -1


def replay(
    source: Path,
    messages: int,
    tmp: Path,
    database_url: str | None,
    profile: Path | None,
    *,
    schema: str | None = None,
) -> Run:
    """One whole `safety-monitor replay` process (migrations, replay, delivery) into a fresh database: a SQLite
    file in `tmp`, or on PostgreSQL a fresh schema dropped afterwards, unless the caller gives its own (empty)
    `schema`, which it then drops itself."""
    env = dict(os.environ)
    env |= {
        "MAIL_BACKEND": "capture",
        "MAIL_CAPTURE_DIR": str(tmp / "mail"),
        "SAFETY_MONITOR_RULES_DIR": str(ROOT / "rules"),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    owned = None
    db_file = tmp / "scale.db"
    if database_url:
        if schema is None:
            schema = owned = f"bench_scale_{uuid.uuid4().hex[:10]}"
            asyncio.run(postgres_schema(database_url, schema, create=True))
        env |= {"DATABASE_URL": database_url, "DATABASE_SCHEMA": schema}
    else:
        env["DATABASE_URL"] = f"sqlite:///{db_file}"
    command = [str(Path(sys.executable).parent / "safety-monitor"), "replay", str(source)]
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), *command]
    load = os.getloadavg()[0]
    try:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        output = process.stdout.read().decode()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"replay of {messages:,} messages failed ({process.returncode}):\n{output}")
        size = None
        if not database_url:
            size = sum(p.stat().st_size for p in tmp.glob("scale.db*")) / 1e6
        # ru_maxrss: KiB on Linux, bytes on macOS
        rss = usage.ru_maxrss / 1e6 if sys.platform == "darwin" else usage.ru_maxrss / 1024
        return Run(messages, seconds, rss, size, load, output)
    finally:
        if owned is not None:
            asyncio.run(postgres_schema(database_url or "", owned, create=False))


async def postgres_schema(url: str, schema: str, *, create: bool) -> None:
    """Create or drop (with everything in it) one schema of the PostgreSQL database at `url`."""
    from sqlalchemy import text

    from safety_monitor.adapters.sql.database import create_engine

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            if create:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            else:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 400_000])
    parser.add_argument("--million", action="store_true", help="add a run of 1,000,000 messages")
    parser.add_argument("--subjects", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--database-url", default=None, help="postgresql://...: a fresh schema per size, dropped")
    parser.add_argument("--profile", metavar="DIR", type=Path, default=None, help="cProfile each run into DIR")
    parser.add_argument("--verbose", action="store_true", help="print each replay's own summary")
    args = parser.parse_args()
    sizes = sorted({*args.sizes, *([1_000_000] if args.million else [])})
    database = "PostgreSQL (fresh schema)" if args.database_url else "SQLite (fresh file)"
    print(f"database: {database}; {args.subjects:,} subjects; {os.cpu_count()} cores")
    print("| messages | seconds | rate (msg/s) | replay alone (msg/s) | peak RSS (MB) | database (MB) | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    runs = []
    mixes: list[str] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_dir:
            tmp = Path(tmp_dir)
            source = tmp / "messages.jsonl"
            counts = generate(source, size, args.subjects, args.seed)
            mix = ", ".join(f"{kind} {count / size:.1%}" for kind, count in sorted(counts.items()))
            mixes.append(f"input {size:,}: {source.stat().st_size / 1e6:,.0f} MB; {mix}")
            profile = args.profile / f"scale-{size}.prof" if args.profile else None
            if profile is not None:
                profile.parent.mkdir(parents=True, exist_ok=True)
            run = replay(source, size, tmp, args.database_url, profile)
            if run.dead_lettered != 0:
                raise SystemExit(f"{size:,} messages: {run.dead_lettered} refused; the rate would not be comparable")
            runs.append(run)
            db = f"{run.database_mb:,.0f}" if run.database_mb is not None else "-"
            print(
                f"| {size:,} | {run.seconds:,.1f} | {run.rate:,.0f} | {run.replay_rate} "
                f"| {run.peak_rss_mb:,.0f} | {db} | {run.load:.2f} |",
                flush=True,
            )
            if args.verbose:
                print(run.output)
    print("seconds and rate: the whole process (start, migrations, replay, delivery); replay alone: as the replay")
    print("reports it (no start-up, no delivery); load: the 1-minute load average when the run started")
    print("\n".join(mixes))
    if len(runs) > 1:
        print(f"rate at {runs[-1].messages:,} / rate at {runs[0].messages:,}: {runs[-1].rate / runs[0].rate:.2f}")


if __name__ == "__main__":
    main()
