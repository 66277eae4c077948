"""``medai-lab pacs echo|query|pull|upload|serve``: argument parsing and output only."""

from __future__ import annotations

import argparse
import json
from typing import Any

from medai_lab.pacs.query import LEVELS, PacsError, QueryFilter

_FILTERS = (
    ("--patient-id", "patient_id", "PatientID (exact)"),
    ("--patient-name", "patient_name", "PatientName; * and ? as wildcards"),
    ("--study-uid", "study_uid", "StudyInstanceUID"),
    ("--series-uid", "series_uid", "SeriesInstanceUID"),
    ("--modality", "modality", "e.g. CT, MR"),
    ("--accession", "accession", "AccessionNumber"),
    ("--date-from", "date_from", "first StudyDate, YYYYMMDD or YYYY-MM-DD"),
    ("--date-to", "date_to", "last StudyDate"),
)
# columns of the query table per level (keyword, header)
_COLUMNS = {
    "STUDY": [
        ("StudyDate", "date"),
        ("ModalitiesInStudy", "modalities"),
        ("NumberOfStudyRelatedSeries", "series"),
        ("NumberOfStudyRelatedInstances", "instances"),
        ("StudyDescription", "description"),
        ("StudyInstanceUID", "study uid"),
    ],
    "SERIES": [
        ("Modality", "modality"),
        ("SeriesNumber", "no"),
        ("NumberOfSeriesRelatedInstances", "instances"),
        ("SeriesDescription", "description"),
        ("SeriesInstanceUID", "series uid"),
    ],
    "IMAGE": [("InstanceNumber", "no"), ("SOPInstanceUID", "sop instance uid")],
}


def add_connection_arguments(p: argparse.ArgumentParser) -> None:
    """The PACS connection options (shared by ``pacs`` and ``predict --study``)."""
    g = p.add_argument_group("connection (DICOMweb: --url; DIMSE: --host/--port/--called-aet)")
    g.add_argument("--url", help="DICOMweb root, e.g. http://127.0.0.1:8042/dicom-web")
    g.add_argument("--token-file", help="bearer token file (else $MEDAI_PACS_TOKEN)")
    g.add_argument("--user", help="basic-auth user (password: $MEDAI_PACS_PASSWORD or file)")
    g.add_argument("--password-file", help="basic-auth password file")
    g.add_argument("--ca-bundle", help="CA certificates to verify the server's TLS certificate")
    g.add_argument("--host", help="DIMSE host")
    g.add_argument("--port", type=int, help="DIMSE port")
    g.add_argument("--called-aet", help="the PACS's AE title")
    g.add_argument("--calling-aet", default="MEDAI_LAB", help="our AE title (default MEDAI_LAB)")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds per network operation")


def _filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("filters")
    for flag, dest, text in _FILTERS:
        g.add_argument(flag, dest=dest, help=text)


def add_parser(sub: Any) -> None:
    """Register ``pacs`` and its subcommands on the main parser's subparsers."""
    pacs = sub.add_parser("pacs", help="query, pull from and upload to a PACS; a workshop PACS")
    cmds = pacs.add_subparsers(dest="pacs_command", required=True, metavar="ACTION")

    p = cmds.add_parser("echo", help="check the connection (C-ECHO or a DICOMweb probe)")
    add_connection_arguments(p)
    p.set_defaults(func=_echo)

    p = cmds.add_parser("query", help="find studies, series or instances")
    add_connection_arguments(p)
    _filters(p)
    p.add_argument("--level", choices=[lv.lower() for lv in LEVELS], default="study")
    p.add_argument("--json", action="store_true", help="rows as JSON (keyword -> value)")
    p.set_defaults(func=_query)

    p = cmds.add_parser("pull", help="retrieve what the filters select into OUT/<study>/<series>")
    add_connection_arguments(p)
    _filters(p)
    p.add_argument("--out", required=True, help="destination folder (resumable)")
    p.add_argument("--deid", action="store_true", help="de-identify before anything is written")
    p.add_argument("--key-file", help="de-identification project key (see medai-lab deid)")
    p.add_argument("--option", action="append", default=[], help="PS3.15 option (repeatable)")
    p.add_argument(
        "--pixels",
        choices=("redact", "quarantine", "off"),
        default="redact",
        help="with --deid: burned-in pixel text policy, as for medai-lab deid (default redact)",
    )
    p.add_argument("--move-to-port", type=int, help="DIMSE: C-MOVE to our SCP on this port")
    p.add_argument("--move-aet", default="MEDAI_MOVE", help="AE title of that SCP")
    p.add_argument("--workers", type=int, default=4, help="DICOMweb: parallel requests")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_pull)

    p = cmds.add_parser("upload", help="send a folder of DICOM files (STOW-RS or C-STORE)")
    add_connection_arguments(p)
    p.add_argument("folder", help="searched recursively; files are never modified")
    p.set_defaults(func=_upload)

    p = cmds.add_parser("serve", help="start a local Orthanc PACS (Ctrl-C stops it)")
    p.add_argument("--dir", default="medai-pacs", help="storage folder (default ./medai-pacs)")
    p.add_argument("--http-port", type=int, default=8042)
    p.add_argument("--dicom-port", type=int, default=4242)
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default loopback)")
    p.add_argument("--aet", default="MEDAI_PACS", help="the PACS's AE title")
    p.add_argument("--user", help="require this user (password from $MEDAI_PACS_PASSWORD)")
    p.set_defaults(func=_serve)


def make_client(args: argparse.Namespace, workers: int = 4) -> Any:
    """A DICOMweb client for ``--url``, else a DIMSE client for ``--host/--port``."""
    if args.url and args.host:
        raise PacsError("give either --url (DICOMweb) or --host/--port (DIMSE), not both")
    if args.url:
        from medai_lab.pacs.auth import load_auth
        from medai_lab.pacs.dicomweb import DicomWebClient

        auth = load_auth(
            token_file=args.token_file, user=args.user, password_file=args.password_file
        )
        verify: bool | str = args.ca_bundle or True
        return DicomWebClient(
            args.url, auth=auth, verify=verify, timeout=args.timeout, workers=workers
        )
    if args.host and args.port and args.called_aet:
        from medai_lab.pacs.dimse import DimseClient

        return DimseClient(
            args.host,
            args.port,
            args.called_aet,
            args.calling_aet,
            timeout=args.timeout,
            move_port=getattr(args, "move_to_port", None),
            move_aet=getattr(args, "move_aet", None),
        )
    raise PacsError("say where the PACS is: --url URL, or --host H --port P --called-aet A")


def _filter(args: argparse.Namespace) -> QueryFilter:
    return QueryFilter.from_mapping({dest: getattr(args, dest) for _, dest, _ in _FILTERS})


def _echo(args: argparse.Namespace) -> int:
    seconds = make_client(args).echo()
    print(f"PACS answered in {seconds * 1000:.0f} ms")
    return 0


def _query(args: argparse.Namespace) -> int:
    level, flt = args.level.upper(), _filter(args)
    rows = make_client(args).query(flt, level)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_rows(rows, level))
    return 0


def format_rows(rows: list[dict[str, str]], level: str) -> str:
    """A plain-text table; patient columns first at study level (the user asked for them)."""
    cols = list(_COLUMNS[level])
    if level == "STUDY":
        cols = [("PatientID", "patient id"), ("PatientName", "name"), *cols]
    table = [[h for _, h in cols]] + [[str(r.get(k, "")) for k, _ in cols] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    lines.append(f"({len(rows)} {level.lower()}{'' if len(rows) == 1 else ' rows'})")
    return "\n".join(line.rstrip() for line in lines)


def _pull(args: argparse.Namespace) -> int:
    from medai_lab.pacs.pull import pull

    flt = _filter(args)
    client = make_client(args, workers=args.workers)
    deid = None
    if args.deid:
        from medai_lab.deid import Deidentifier
        from medai_lab.deid.keys import load_or_create_key

        deid = Deidentifier(load_or_create_key(args.key_file), args.option, pixels=args.pixels)
    report = pull(client, flt, args.out, deidentifier=deid, progress=not args.no_progress)
    print(report.describe())
    return 0


def _upload(args: argparse.Namespace) -> int:
    from medai_lab.pacs.upload import upload

    report, skipped = upload(make_client(args), args.folder)
    print(f"sent {report.sent} of {report.sent + len(report.failed)} DICOM files")
    if skipped:
        print(f"  skipped {len(skipped)} non-DICOM or quarantined file(s), e.g. {skipped[0]}")
    reasons: dict[str, list[str]] = {}
    for name, why in sorted(report.failed.items()):
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():  # one line per reason, not one per file
        more = f" and {len(names) - 1} more" if len(names) > 1 else ""
        print(f"  not sent: {names[0]}{more}: {why}")
    return 1 if report.failed else 0


def _serve(args: argparse.Namespace) -> int:
    import os

    from medai_lab.pacs.server import serve

    users = None
    if args.user:
        password = os.environ.get("MEDAI_PACS_PASSWORD")
        if not password:
            raise PacsError("--user needs the password in $MEDAI_PACS_PASSWORD")
        users = {args.user: password}
    return serve(
        args.dir,
        http_port=args.http_port,
        dicom_port=args.dicom_port,
        host=args.host,
        users=users,
        aet=args.aet,
    )
