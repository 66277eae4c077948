"""DIMSE client: C-ECHO, C-FIND, C-GET / C-MOVE and C-STORE with pynetdicom.

Every call opens its own association and releases it (no connection is held). Failures end in
one :class:`PacsError` line; only quick transient network failures (refused, reset, aborted
while associating) are retried, with exponential backoff, so a timeout costs ``timeout`` once.
Nothing that identifies a patient is logged or put in an error message.

C-MOVE needs the PACS to know our destination AE: register ``move_aet`` at
``127.0.0.1:move_port`` on the PACS first (Orthanc: ``PUT /modalities/<name>`` with
``{"AET": move_aet, "Host": "127.0.0.1", "Port": move_port}``).
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydicom import Dataset
from pydicom.uid import UID
from pynetdicom import AE, _config, build_context, evt
from pynetdicom import sop_class as sc  # SOP class names made at import time: mypy cannot see
from pynetdicom.status import code_to_category

from medai_lab.pacs.base import Sink, StoreReport
from medai_lab.pacs.dimse_scp import (
    FEW_CLASSES,
    MAX_CONTEXTS,
    QUIET,
    Receiver,
    as_row,
    get_contexts,
    identifier,
    move_destination,
    preflight,
    status_text,
)
from medai_lab.pacs.query import LEVELS, RETURN_KEYS, PacsError, QueryFilter

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# pynetdicom logs C-FIND/C-GET identifiers (patient names and IDs) at INFO, and its own error
# lines would double ours: keep it quiet unless someone set its level (e.g. debug_logger()).
_PYNETDICOM_LOG = logging.getLogger("pynetdicom")
if _PYNETDICOM_LOG.level == logging.NOTSET:
    _PYNETDICOM_LOG.setLevel(logging.CRITICAL)

# C-STORE a file path as is (only its meta is parsed) instead of dcmread + re-encode.
_config.STORE_SEND_CHUNKED_DATASET = True

_PENDING = (0xFF00, 0xFF01)
_UID_CHUNK = 200  # SOP Instance UIDs per IMAGE-level retrieve identifier (~13 kB)
_MIN_SHARE = 32  # fewer instances than this per association: not worth another association


class _Transient(PacsError):
    """A quick network failure worth another try (refused, reset, aborted while associating)."""


class _Refused(PacsError):
    """The PACS answered a request with a failure status."""


class DimseClient:
    """A PACS reached over DIMSE (implements :class:`medai_lab.pacs.base.PacsClient`).

    Parameters
    ----------
    host, port, called_aet
        The PACS; ``called_aet`` is its AE title.
    calling_aet
        Our AE title, as the PACS knows it.
    timeout
        Seconds for connecting, association negotiation and each DIMSE response.
    retries, backoff
        Extra attempts after a transient network failure, waiting ``backoff * 2**n`` s.
    move_port, move_aet
        Retrieve by C-MOVE to a temporary Storage SCP on ``127.0.0.1:move_port`` titled
        ``move_aet`` (default ``calling_aet``) instead of C-GET.
    associations
        C-GET over up to this many associations at once, each fetching its share of the
        instances (at least 32 each; a whole series is listed first by IMAGE-level C-FIND,
        so it is fetched as listed). pynetdicom handles one instance at a time per
        association, with a few ms of its own per instance; a PACS that limits concurrent
        associations per AE title may refuse more than one. Default 1.
    """

    #: Bound on the rows one :meth:`query` collects; the rest is dropped with a warning.
    max_rows = 10_000

    def __init__(
        self,
        host: str,
        port: int,
        called_aet: str,
        calling_aet: str = "MEDAI_LAB",
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        move_port: int | None = None,
        move_aet: str | None = None,
        associations: int = 1,
    ) -> None:
        for name, aet in (("called", called_aet), ("calling", calling_aet), ("move", move_aet)):
            if aet is not None and not (0 < len(aet.strip()) <= 16 and aet.isascii()):
                raise PacsError(f"{name} AE title must be 1-16 ASCII characters, got {aet!r}")
        self.host, self.port = host, int(port)
        self.called_aet, self.calling_aet = called_aet.strip(), calling_aet.strip()
        self.timeout, self.retries, self.backoff = float(timeout), max(0, retries), backoff
        self.move_port, self.move_aet = move_port, (move_aet or calling_aet).strip()
        self.associations = max(1, int(associations))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def echo(self) -> float:
        """C-ECHO; seconds from the association request to the echo response."""
        start = time.perf_counter()
        verification = sc.Verification  # type: ignore[attr-defined]
        with self._association([build_context(verification)]) as assoc:
            self._status(assoc.send_c_echo(), "C-ECHO")
            return time.perf_counter() - start

    def query(self, flt: QueryFilter, level: str = "STUDY") -> list[dict[str, str]]:
        """C-FIND (Study Root) rows of keyword -> str for ``RETURN_KEYS[level]``."""
        level = level.upper()
        if level not in LEVELS:
            raise PacsError(f"query level must be one of {', '.join(LEVELS)}, got {level!r}")
        keys = flt.keys()
        if level == "STUDY" and "Modality" in keys:
            keys["ModalitiesInStudy"] = keys.pop("Modality")
        return self._find(level, keys, limit=self.max_rows)

    def instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of one series (IMAGE-level C-FIND)."""
        # Only the UID: Orthanc answers it from its index, but reads every file for more
        # (SOPClassUID: 300 instances of 512x512 CT in 1.3 s instead of 0.3 s).
        rows = self._find("IMAGE", _series_keys(study_uid, series_uid), returns=["SOPInstanceUID"])
        return [row["SOPInstanceUID"] for row in rows if row["SOPInstanceUID"]]

    def retrieve(
        self, study_uid: str, series_uid: str, sop_uids: Sequence[str] | None, sink: Sink
    ) -> int:
        """C-GET (or C-MOVE with ``move_port``) a series or some of its instances into ``sink``.

        Raises PacsError when a sub-operation failed, the sink raised, or the number received
        differs from what the PACS reported (or from ``sop_uids``).
        """
        base = _series_keys(study_uid, series_uid)
        wanted = list(dict.fromkeys(sop_uids)) if sop_uids is not None else None
        if wanted == []:
            return 0
        if wanted is None and self.move_port is None and self.associations > 1:
            wanted = self.instances(study_uid, series_uid) or None  # None: as one association
        shares = 1 if wanted is None or self.move_port is not None else self.associations
        shares = min(shares, math.ceil(len(wanted or ()) / _MIN_SHARE)) or 1
        receiver = Receiver(sink)
        op = "C-GET" if self.move_port is None else "C-MOVE"
        try:
            if self.move_port is not None:
                totals = self._move(_identifiers(base, wanted), receiver)
            elif shares == 1:
                classes = self._sop_classes(base, wanted)
                totals = self._get(_identifiers(base, wanted), receiver, classes)
            else:
                totals = self._get_shared(base, wanted or [], shares, receiver)
        except PacsError:
            receiver.raise_sink_error(op)  # a PACS may stop at the first refused instance
            raise
        return receiver.verify(op, totals, wanted)

    def store(self, files: Iterable[Path]) -> StoreReport:
        """C-STORE files as they are; per-file failures go in ``StoreReport.failed``.

        Raises PacsError only when the PACS cannot be reached before anything was sent.
        """
        report = StoreReport()
        todo: list[tuple[Path, str, str]] = []
        for path in map(Path, files):
            try:
                todo.append((path, *preflight(path)))
            except ValueError as exc:
                report.failed[str(path)] = str(exc)
        first = True
        while todo:
            # One association takes at most 128 (SOP class, transfer syntax) contexts.
            pairs: dict[tuple[str, str], None] = {}
            batch, rest = [], []
            for item in todo:
                if (item[1], item[2]) in pairs or len(pairs) < MAX_CONTEXTS:
                    pairs[(item[1], item[2])] = None
                    batch.append(item)
                else:
                    rest.append(item)
            todo, size = rest, len(batch)
            try:
                self._store_batch(batch, list(pairs), report)  # consumes batch
            except PacsError as exc:
                if first and len(batch) == size:
                    raise  # the PACS cannot be reached at all: one error, not one per file
                for path, _, _ in [*batch, *todo]:
                    report.failed[str(path)] = str(exc)
                break
            first = False
        return report

    def _find(
        self, level: str, keys: dict, limit: int | None = None, returns: Sequence[str] = ()
    ) -> list[dict[str, str]]:
        """C-FIND rows with ``returns`` (default ``RETURN_KEYS[level]``) and the matching keys."""
        model = sc.StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]
        returns = tuple(returns or RETURN_KEYS[level])
        rows: list[dict[str, str]] = []
        with self._association([build_context(model)]) as assoc:
            for status, ident in assoc.send_c_find(identifier(level, keys, returns), model):
                if self._status(status, "C-FIND") not in _PENDING:
                    break
                if ident is not None:
                    rows.append(as_row(ident, returns))
                if limit is not None and len(rows) >= limit:
                    LOG.warning("C-FIND answer cut at %d rows; narrow the query", limit)
                    assoc.abort()  # the only sure way to stop the pending responses
                    break
        return rows

    def _get(
        self, identifiers: list, receiver: Receiver, classes: list[str] | None
    ) -> dict[str, int | None]:
        """C-GET proposing (with the SCP role) the storage ``classes`` the series holds."""
        model = sc.StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]
        contexts, roles = get_contexts(classes)
        with self._association(
            [build_context(model), *contexts], roles, receiver.handlers
        ) as assoc:
            return self._run_retrieve("C-GET", lambda ds: assoc.send_c_get(ds, model), identifiers)

    def _get_shared(
        self, base: dict, wanted: list[str], shares: int, receiver: Receiver
    ) -> dict[str, int | None]:
        """C-GET ``wanted`` in ``shares`` contiguous parts, one association (thread) each.

        Every part runs to its end (after a sink error the others' instances are refused
        at once); then the first error is raised, else the summed sub-operation counts.
        """
        classes = self._sop_classes(base, wanted)
        size = math.ceil(len(wanted) / shares)
        parts = [wanted[i : i + size] for i in range(0, len(wanted), size)]
        with ThreadPoolExecutor(len(parts), thread_name_prefix="c-get") as pool:
            futures = [
                pool.submit(self._get, _identifiers(base, part), receiver, classes)
                for part in parts
            ]
            results, errors = [], []
            for future in futures:
                try:
                    results.append(future.result())
                except Exception as exc:  # raised below, once every association has ended
                    errors.append(exc)
        if errors:
            raise errors[0]
        totals: dict[str, int | None] = {"completed": 0, "failed": 0, "warning": 0}
        for result in results:
            for key, value in result.items():
                old = totals[key]
                totals[key] = None if value is None or old is None else old + value
        return totals

    def _sop_classes(self, base: dict, wanted: list[str] | None) -> list[str] | None:
        """Storage classes to propose for C-GET; None when the PACS does not tell.

        SOPClassesInStudy is one C-FIND answer (a superset of the series' classes); the
        IMAGE-level C-FIND, one answer per instance, is the fallback.
        """
        try:
            study = {"StudyInstanceUID": base["StudyInstanceUID"]}
            for row in self._find("STUDY", study, returns=["SOPClassesInStudy"]):
                classes = [uid for uid in row["SOPClassesInStudy"].split("\\") if uid]
                if 0 < len(classes) <= FEW_CLASSES:
                    return classes
            keep = set(wanted or ())
            rows = self._find("IMAGE", base, returns=["SOPInstanceUID", "SOPClassUID"])
            found = {r["SOPClassUID"] for r in rows if not keep or r["SOPInstanceUID"] in keep}
            return sorted(found) if found and "" not in found else None
        except _Refused as exc:  # a PACS without these queries: propose every storage class
            LOG.info("C-FIND for SOP classes refused (%s)", exc)
            return None

    def _move(self, identifiers: list, receiver: Receiver) -> dict[str, int | None]:
        """C-MOVE to our own short-lived Storage SCP (``move_aet`` on ``move_port``)."""
        model = sc.StudyRootQueryRetrieveInformationModelMove  # type: ignore[attr-defined]
        with (
            move_destination(self.move_port or 0, self.move_aet, receiver, self.timeout),
            self._association([build_context(model)]) as assoc,
        ):
            send = lambda ds: assoc.send_c_move(ds, self.move_aet, model)  # noqa: E731
            try:
                return self._run_retrieve("C-MOVE", send, identifiers)
            except _Refused as exc:  # Orthanc answers 0xC000 (not 0xA801) for unknown AEs
                raise PacsError(
                    f"{exc}; does the PACS know AE '{self.move_aet}' at 127.0.0.1:{self.move_port}?"
                ) from None

    def _run_retrieve(
        self, op: str, send: Callable[[Dataset], Iterator], identifiers: list[Dataset]
    ) -> dict[str, int | None]:
        """Send each request; sum the sub-operation counts of the final responses."""
        totals: dict[str, int | None] = {"completed": 0, "failed": 0, "warning": 0}
        for ident in identifiers:
            final = None
            for status, _ in send(ident):
                if self._status(status, op, fatal=False) not in _PENDING:
                    final = status
            if final is None:
                raise PacsError(f"{op} to {self.address}: no final response")
            for key in totals:
                value = final.get(f"NumberOf{key.capitalize()}Suboperations")
                old = totals[key]
                totals[key] = None if value is None or old is None else old + int(value)
            code = int(final.Status)
            if code_to_category(code) == "Failure" and not totals["failed"]:
                raise _Refused(f"{op} failed on {self.address}: {status_text(op, code)}")
        return totals

    def _store_batch(self, pending: list, pairs: list, report: StoreReport) -> None:
        """C-STORE ``pending`` (consumed from the front); re-associate if the PACS aborts."""
        contexts = [build_context(cls, ts) for cls, ts in pairs]
        while pending:
            with self._association(contexts) as assoc:
                while pending and assoc.is_established:
                    path, cls, ts = pending.pop(0)
                    name = str(path)
                    try:
                        status = assoc.send_c_store(path)
                    except ValueError:  # the PACS accepted no context for this pair
                        report.failed[name] = f"PACS refused {UID(cls).name} in {UID(ts).name}"
                        continue
                    except (OSError, AttributeError) as exc:
                        report.failed[name] = f"cannot send: {exc}"
                        continue
                    code = int(status.Status) if "Status" in status else None
                    if code is None:
                        report.failed[name] = "no C-STORE response (timeout or abort)"
                    elif code_to_category(code) in ("Success", "Warning"):
                        report.sent += 1
                    else:
                        report.failed[name] = f"C-STORE {status_text('C-STORE', code)}"

    def _status(self, status: Dataset | None, op: str, fatal: bool = True) -> int:
        """The status code; PacsError on no response (timeout/abort) or, if fatal, failure."""
        if status is None or "Status" not in status:
            raise PacsError(
                f"{op} to {self.address}: no response within {self.timeout:g} s "
                "or the association was aborted"
            )
        code = int(status.Status)
        if fatal and code not in _PENDING and code_to_category(code) not in ("Success", "Warning"):
            raise _Refused(f"{op} failed on {self.address}: {status_text(op, code)}")
        return code

    @contextmanager
    def _association(
        self, contexts: list, roles: list | None = None, handlers: list | None = None
    ) -> Iterator[Any]:
        assoc = self._retry(lambda: self._associate_once(contexts, roles, handlers or []))
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _retry(self, attempt: Callable[[], T]) -> T:
        for n in range(self.retries + 1):
            try:
                return attempt()
            except _Transient as exc:
                if n == self.retries:
                    raise PacsError(str(exc)) from None
                LOG.info("%s; retry %d of %d", exc, n + 1, self.retries)
                time.sleep(self.backoff * 2**n)
        raise AssertionError("unreachable")

    def _associate_once(self, contexts: list, roles: list | None, handlers: list) -> Any:
        try:
            socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise PacsError(f"cannot resolve host {self.host!r}") from None
        ae = AE(ae_title=self.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.connection_timeout = self.timeout
        opened: list[bool] = []  # pynetdicom swallows the socket error: note if TCP got through
        start = time.monotonic()
        assoc = ae.associate(
            self.host, self.port, contexts=contexts, ae_title=self.called_aet,
            max_pdu=0, ext_neg=roles or None,
            evt_handlers=[*handlers, QUIET, (evt.EVT_CONN_OPEN, lambda e: opened.append(True))],
        )  # fmt: skip
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise PacsError(self._rejection(assoc.acceptor.primitive))
        elapsed = time.monotonic() - start
        if elapsed >= 0.9 * self.timeout:  # a timeout already took all the time there was
            what = "connecting to" if not opened else "waiting for the association answer from"
            raise PacsError(f"timed out after {self.timeout:g} s {what} {self.address}")
        if not opened:
            raise _Transient(self._connect_failure())
        raise _Transient(f"association aborted by {self.address} (is it a DICOM port?)")

    def _rejection(self, rsp: Any) -> str:
        where = f"association rejected by {self.address}"
        if rsp is None:
            return where
        if rsp.result_source == 1 and rsp.diagnostic == 7:
            return f"{where}: called AE title '{self.called_aet}' not recognised"
        if rsp.result_source == 1 and rsp.diagnostic == 3:
            return (f"{where}: calling AE title '{self.calling_aet}' not recognised "
                    "(register it on the PACS)")  # fmt: skip
        return f"{where}: {rsp.result_str} ({rsp.source_str}: {rsp.reason_str})"

    def _connect_failure(self) -> str:
        """Why TCP failed: pynetdicom only logs it, so probe the port once (fast on refusal)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=min(self.timeout, 5)):
                pass
        except ConnectionRefusedError:
            return f"connection refused by {self.address} (nothing listening on that port?)"
        except TimeoutError:
            return f"timed out connecting to {self.address}"
        except OSError as exc:
            return f"cannot connect to {self.address}: {exc.strerror or exc}"
        return f"cannot connect to {self.address}"


def _identifiers(base: dict[str, str], wanted: list[str] | None) -> list[Dataset]:
    """SERIES-level identifier for a whole series, else IMAGE level with UID lists in chunks
    a PACS will take."""
    if wanted is None:
        return [identifier("SERIES", base)]
    return [
        identifier("IMAGE", {**base, "SOPInstanceUID": wanted[i : i + _UID_CHUNK]})
        for i in range(0, len(wanted), _UID_CHUNK)
    ]


def _series_keys(study_uid: str, series_uid: str) -> dict[str, str]:
    flt = QueryFilter(study_uid=study_uid, series_uid=series_uid)  # validates both UIDs
    return {"StudyInstanceUID": flt.study_uid or "", "SeriesInstanceUID": flt.series_uid or ""}
