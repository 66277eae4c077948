"""A DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) on plain ``requests``.

Not dicomweb-client, after reading it: it parses every retrieved instance with pydicom (we pass
the server's bytes on untouched), logs query URLs (patient names), percent-encodes ``*`` (no
wildcard matches on Orthanc, which does not decode QIDO arguments), loses STOW failures on 409.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.parser import HeaderParser
from functools import cache, partial
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from medai_lab.pacs import redact
from medai_lab.pacs.auth import Auth
from medai_lab.pacs.base import Sink, StoreReport
from medai_lab.pacs.query import LEVELS, RETURN_KEYS, PacsError, QueryFilter

log = logging.getLogger(__name__)

# transfer-syntax=* is "as stored": else servers transcode (Orthanc 1.10: HTTP 500 for JPEG
# 2000) and PixelData is not the original. identity: Orthanc gzips what a client accepts, ~10x
# slower on loopback for pixel data.
ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
WADO = {"Accept": ACCEPT_DICOM, "Accept-Encoding": "identity"}
JSON = "application/dicom+json, application/json"
STOW_FILES, STOW_BYTES, MAX_PAGES, CHUNK = 20, 64 << 20, 200, 1 << 20
# Sent as typed in query values (legal in a URI query), so servers that do not decode their
# arguments still see wildcards; the rest is percent-encoded (in names: a ? wildcard).
_SAFE = "*?!$'(),;:@/"
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_requests = partial(importlib.import_module, "requests")  # on first use: this module stays light


class DicomWebClient:
    """One DICOMweb service (a :class:`medai_lab.pacs.base.PacsClient`); no state between calls.

    Parameters
    ----------
    url : service root, e.g. ``https://pacs.example.org/dicom-web`` (no credentials in it).
    auth, verify : basic/bearer credentials or None; True, False or a CA bundle path.
    timeout : seconds to connect, and between bytes read.
    retries, backoff : extra tries after a reset or HTTP 502/503/504; first delay, doubling.
    workers, retrieve_mode : a whole series comes in one streamed request (``"series"``, the
        faster on Orthanc) or as ``workers`` parallel per-instance requests (``"instance"``).
    """

    def __init__(
        self, url: str, *, auth: Auth | None = None, verify: bool | str = True,
        timeout: float = 30.0, retries: int = 2, backoff: float = 0.5, workers: int = 4,
        retrieve_mode: str = "series",
    ) -> None:  # fmt: skip
        parts = urlsplit(url.strip())
        netloc = parts.netloc.rpartition("@")[2]  # messages must not repeat what precedes @
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError("the DICOMweb URL must look like http(s)://host[:port]/root")
        if "@" in parts.netloc:  # refused: it would end up in logs, histories and messages
            raise PacsError("credentials in the URL are refused: use MEDAI_PACS_* or files")
        if isinstance(verify, str) and not Path(verify).expanduser().is_file():
            raise PacsError(f"CA bundle not found: {verify}")
        if retrieve_mode not in ("instance", "series"):
            raise PacsError("retrieve_mode must be 'instance' or 'series'")
        self.url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.netloc, self.auth, self.retrieve_mode = netloc, auth, retrieve_mode
        self.verify = str(Path(verify).expanduser()) if isinstance(verify, str) else verify
        self.timeout, self.retries, self.backoff = float(timeout), max(0, retries), backoff
        self.workers = max(1, workers)
        redact.install()  # urllib3's DEBUG request lines would carry the query (names, IDs)
        if auth and parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1"):
            log.warning("credentials will travel unencrypted (http://) to %s", netloc)

    def echo(self) -> float:
        """Seconds for a one-row QIDO-RS study search; PacsError if the service is unusable."""
        t0 = time.perf_counter()
        with self._session() as s:
            r = self._request(s, "GET", "/studies?limit=1", {"Accept": JSON}, what="query")
            if _json_items(r) is None:
                raise PacsError(f"{self.url} answers, but not DICOMweb (check the root)")
        return time.perf_counter() - t0

    def query(self, flt: QueryFilter, level: str = "STUDY") -> list[dict[str, str]]:
        """QIDO-RS rows (keyword -> string, :data:`RETURN_KEYS`) at STUDY/SERIES/IMAGE level."""
        level = level.upper()
        if level not in LEVELS:
            raise PacsError(f"query level must be one of {', '.join(LEVELS)}, not {level!r}")
        keys = flt.keys()
        study, series = keys.pop("StudyInstanceUID", None), keys.pop("SeriesInstanceUID", None)
        if level == "STUDY":  # hierarchical resources where the UIDs allow, else flat ones
            path, keys["StudyInstanceUID"] = "/studies", study or ""
            keys["ModalitiesInStudy"] = keys.pop("Modality", "")
        elif level == "IMAGE" and study and series:
            path = f"/studies/{_uid(study)}/series/{_uid(series)}/instances"
        else:
            path = f"/studies/{_uid(study)}" if study else ""
            path += "/series" if level == "SERIES" else "/instances"
            keys["SeriesInstanceUID"] = series or ""
        fields = list(RETURN_KEYS[level])
        if pattern := keys.get("PatientName"):  # what URLs escape (^, space) goes as ?, re-checked
            keys["PatientName"] = "".join(c if quote(c, _SAFE) == c else "?" for c in pattern)
            keys["fuzzymatching"] = "false"
            fields.append("PatientName")
        params = [(k, v) for k, v in keys.items() if v]
        params += [("includefield", f) for f in dict.fromkeys(fields)]
        with self._session() as s:
            items = self._search(s, path, params)
        rows = [{kw: _text(item.get(_tag(kw))) for kw in fields} for item in items]
        if pattern:
            rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
            match = re.compile(rx, re.IGNORECASE | re.DOTALL).fullmatch  # as most PACS match
            rows = [r for r in rows if not r["PatientName"] or match(r["PatientName"])]
        return [{k: r[k] for k in RETURN_KEYS[level]} for r in rows]

    def instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of one series (QIDO-RS), in the server's order."""
        with self._session() as s:
            return self._instances(s, study_uid, series_uid)

    def _instances(self, s: Any, study_uid: str, series_uid: str) -> list[str]:
        path = f"/studies/{_uid(study_uid)}/series/{_uid(series_uid)}/instances"
        items = self._search(s, path, [("includefield", "SOPInstanceUID")])
        return [u for u in (_text(i.get(_tag("SOPInstanceUID"))) for i in items) if u]

    def retrieve(
        self, study_uid: str, series_uid: str, sop_uids: Sequence[str] | None, sink: Sink
    ) -> int:
        """WADO-RS a series (all listed instances, or ``sop_uids``) into ``sink``; count."""
        base = f"/studies/{_uid(study_uid)}/series/{_uid(series_uid)}"
        sops = [_uid(u) for u in dict.fromkeys(sop_uids)] if sop_uids is not None else []
        whole = sop_uids is None and self.retrieve_mode == "series"
        with self._session(pool=self.workers) as s:
            # A whole series is checked against the count of a series-level QIDO-RS: the
            # instance listing costs the server a file read per instance (Orthanc 1.10: 1.3 s
            # for 300 CT slices, more than the retrieve), the count comes from its index.
            expected = self._series_count(s, study_uid, series_uid) if whole else None
            if sop_uids is None and expected is None:
                sops = self._instances(s, study_uid, series_uid)
            if sop_uids is None and not (sops or expected):
                raise PacsError("the PACS lists no instances in that series")
            if whole:
                r = self._request(s, "GET", base, WADO, True, "retrieve")
                n = self._deliver(r, sink, threading.Event())
            else:  # per instance; on failure, requests in flight end but feed no sink
                stop = threading.Event()

                def fetch(sop: str) -> int:
                    if stop.is_set():
                        return 0
                    r = self._request(s, "GET", f"{base}/instances/{sop}", WADO, True, "retrieve")
                    return self._deliver(r, sink, stop)

                with ThreadPoolExecutor(self.workers, thread_name_prefix="wado-rs") as pool:
                    futures = [pool.submit(fetch, sop) for sop in sops]
                    try:
                        n = sum(f.result() for f in as_completed(futures))
                    except BaseException:
                        stop.set()
                        pool.shutdown(cancel_futures=True)  # queued ones never start
                        raise
        if n != (len(sops) if expected is None else expected):
            raise PacsError(f"received {n} of {expected or len(sops)} instances of the series")
        return n

    def _series_count(self, s: Any, study_uid: str, series_uid: str) -> int | None:
        """NumberOfSeriesRelatedInstances of one series (0 if not found); None if not told."""
        key = "NumberOfSeriesRelatedInstances"
        params = [("SeriesInstanceUID", series_uid), ("includefield", key)]
        rows = self._search(s, f"/studies/{_uid(study_uid)}/series", params)
        series = [r for r in rows if _text(r.get(_tag("SeriesInstanceUID"))) == series_uid]
        if not series:
            return 0
        counts = {_text(r.get(_tag(key))) for r in series}
        count = counts.pop() if len(counts) == 1 else ""
        return int(count) if count.isdigit() else None

    def store(self, files: Iterable[Path]) -> StoreReport:
        """STOW-RS ``files``, 20 a request; refusals land in ``failed`` (files are only read)."""
        from pydicom import dcmread

        report, batch = StoreReport(), []
        with self._session() as s:
            for path in map(Path, files):
                try:
                    data = to_part10(path.read_bytes())
                    ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=[0x80018])
                    batch.append((path, str(ds.SOPInstanceUID), data))
                except OSError as err:
                    report.failed[str(path)] = f"cannot read it: {err.strerror or err}"
                except Exception:  # pydicom raises many kinds on what is not DICOM
                    report.failed[str(path)] = "not a DICOM file with a SOP Instance UID"
                if len(batch) >= STOW_FILES or sum(len(b[2]) for b in batch) >= STOW_BYTES:
                    self._stow(s, batch, report)
                    batch = []
            if batch:
                self._stow(s, batch, report)
        return report

    def _session(self, pool: int = 1) -> Any:
        s = (requests := _requests()).Session()
        s.auth = self.auth.requests_auth() if self.auth else None
        s.headers["User-Agent"] = "medai-lab"
        # A connection per worker; urllib3's pool is thread-safe, so threads share the session.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        s.mount(self.url.split("://")[0] + "://", adapter)
        return s

    def _request(
        self, s: Any, method: str, path: str, headers: dict[str, str], stream: bool = False,
        what: str | None = None, data: bytes | None = None,
    ) -> Any:  # fmt: skip
        for attempt in range(self.retries + 1):
            try:
                # verify per request: requests lets $REQUESTS_CA_BUNDLE beat session.verify
                r = s.request(method, self.url + path, headers=headers, data=data,
                              stream=stream, timeout=self.timeout, verify=self.verify)  # fmt: skip
                if r.status_code not in (502, 503, 504) or attempt == self.retries:
                    return self._check(r, what) if what else r
                r.close()
                why = f"HTTP {r.status_code}"
            except _requests().RequestException as err:
                error, transient = self._network_error(err)
                if attempt == self.retries or not transient:
                    raise error from None  # the cause's text has the query (names, IDs)
                why = "connection reset"
            log.info("%s to %s: %s, retrying", method, self.netloc, why)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def _check(self, r: Any, what: str) -> Any:
        if (code := r.status_code) < 300:
            return r
        r.close()
        hint = "check the user/password or token" if self.auth else "the PACS wants credentials"
        raise PacsError({
            401: f"authentication failed (HTTP 401) at {self.netloc}: {hint}",
            403: f"access denied (HTTP 403) at {self.netloc}: not allowed to {what}",
            404: f"the series or instance is not on the PACS (HTTP 404) at {self.netloc}"
            if what == "retrieve" else
            f"no DICOMweb service at {self.url} (check the root, e.g. /dicom-web)",
        }.get(code, f"{what} failed: HTTP {code} {r.reason or ''} from {self.netloc}"))  # fmt: skip

    def _network_error(self, err: Exception) -> tuple[PacsError, bool]:
        # repr shows the causes (urllib3, socket, ssl); the URL in it (the query) is cut out
        text, at, requests = re.sub(r"url: \S+", "", repr(err)), self.netloc, _requests()
        if isinstance(err, requests.exceptions.SSLError):
            why = m[1].strip() if (m := re.search(r"verify failed: ([^(]+)", text)) else "TLS"
            return PacsError(
                f"TLS verification failed for {at} ({why}); for a private CA pass its bundle: "
                "verify='/path/ca.pem' (CLI --ca-bundle)"
            ), False
        if isinstance(err, requests.Timeout):
            return PacsError(f"no answer from {at} within {self.timeout:g} s"), False
        if re.search(r"NameResolution|resolve|Name or service|nodename", text):
            return PacsError(f"unknown host {urlsplit(self.url).hostname} (DNS failed)"), False
        if "refused" in text:
            return PacsError(f"connection refused by {at} (is the server running?)"), False
        reset = re.search(r"reset|RemoteDisconnected|aborted|Broken pipe", text) is not None
        why = "reset by the server" if reset else type(err).__name__
        return PacsError(f"connection to {at} failed: {why}"), reset

    def _search(self, s: Any, path: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        # No limit sent (Orthanc 1.10 mis-pages ModalitiesInStudy); offsets only after a Warning
        out: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = params + ([("offset", str(len(out)))] if out else [])
            query = "&".join(f"{quote(k)}={quote(str(v), safe=_SAFE)}" for k, v in page)
            r = self._request(s, "GET", f"{path}?{query}", {"Accept": JSON}, what="query")
            if (items := _json_items(r)) is None:
                raise PacsError(f"{self.url} answered a query with something not DICOM JSON")
            out += items
            if not items or "Warning" not in r.headers:
                return out
        raise PacsError(f"the PACS keeps paging past {len(out)} results: narrow the query")

    def _deliver(self, r: Any, sink: Sink, stop: threading.Event) -> int:
        n, head = 0, HeaderParser().parsestr(f"Content-Type: {r.headers.get('Content-Type')}\n\n")
        with r:
            try:  # some servers send a lone instance without the multipart wrapping
                boundary = head.get_param("boundary")
                parts = (iter_parts(r.iter_content(CHUNK), str(boundary).encode()) if boundary
                         else iter([(head, r.content)]))  # fmt: skip
                for headers, body in parts:
                    if stop.is_set():
                        break
                    syntax = headers.get_param("transfer-syntax")
                    data = to_part10(body, syntax if isinstance(syntax, str) else None)
                    try:
                        sink(data)
                    except PacsError:
                        raise
                    except Exception as err:
                        msg = f"storing a received instance failed: {type(err).__name__}: {err}"
                        raise PacsError(msg) from err
                    n += 1
            except _requests().RequestException as err:
                raise self._network_error(err)[0] from None
        return n

    def _stow(self, s: Any, batch: list[tuple[Path, str, bytes]], report: StoreReport) -> None:
        b = uuid.uuid4().hex
        body = b"".join(b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (b.encode(), d)
                        for *_, d in batch) + f"--{b}--\r\n".encode()  # fmt: skip
        ctype = f'multipart/related; type="application/dicom"; boundary={b}'
        r = self._request(s, "POST", "/studies", {"Content-Type": ctype, "Accept": JSON}, data=body)
        if r.status_code in (401, 403, 404, 405):
            self._check(r, "store")
        answer = (_json_items(r) or [{}])[0]  # Orthanc answers 400/409 with both lists too
        seq = {t: [i for i in (answer.get(t) or {}).get("Value", []) if isinstance(i, dict)]
               for t in ("00081199", "00081198")}  # fmt: skip
        stored = {_text(i.get("00081155")) for i in seq["00081199"]}
        refused = {_text(i.get("00081155")): _text(i.get("00081197")) for i in seq["00081198"]}
        listed = "00081199" in answer or "00081198" in answer
        for path, uid, _ in batch:
            if uid in refused:  # Failure Reason: PS3.4 Annex GG, e.g. 0xA700 out of resources
                code = refused[uid]
                why = f" (failure reason 0x{int(code):04X})" if code.isdigit() else ""
                report.failed[str(path)] = f"the PACS refused it{why}"
            elif uid in stored or (not listed and r.status_code < 300):
                report.sent += 1
            else:
                report.failed[str(path)] = f"not stored (HTTP {r.status_code} {r.reason})"


def iter_parts(chunks: Iterable[bytes], boundary: bytes) -> Iterator[tuple[Any, bytes]]:
    """(headers, body) of each part of a multipart body arriving in ``chunks``, streamed: one
    part and one chunk at most are held. A body ends at CRLF + delimiter (RFC 2046)."""
    it, buf, start, end = iter(chunks), bytearray(), 0, b"\r\n--" + boundary

    def find(marker: bytes) -> int:  # index of marker in buf, reading on as needed; -1: EOF
        nonlocal start
        while (i := buf.find(marker, start)) < 0:
            start = max(0, len(buf) - len(marker) + 1)
            if (chunk := next(it, None)) is None:
                return -1
            buf.extend(chunk)
        start = 0
        return i

    if (i := find(end[2:])) < 0:
        return
    del buf[: i + len(end) - 2]
    while True:
        h = find(b"\r\n\r\n")
        if buf[:2] == b"--":  # the closing delimiter
            return
        if h < 0 or (n := find(end)) < 0:
            raise PacsError("the PACS's multipart answer is cut short")
        headers = HeaderParser().parsestr(bytes(buf[:h]).decode("latin-1").strip() + "\n\n")
        with memoryview(buf) as view:
            body = bytes(view[h + 4 : n])
        del buf[: n + len(end)]
        yield headers, body


def to_part10(data: bytes, transfer_syntax: str | None = None) -> bytes:
    """``data`` as a DICOM Part 10 file: as is with a preamble, else wrapped in a file meta
    group built from its header. The data set's bytes (pixel data too) are never decoded."""
    if data[128:132] == b"DICM":
        return data
    if data[:4] == b"DICM" or data[:2] == b"\x02\x00":  # preamble (and magic) missing
        return bytes(128) + (b"" if data[:4] == b"DICM" else b"DICM") + data
    import pydicom  # its package import loads dataset, filebase, filewriter and uid

    try:
        if int.from_bytes(data[:2], "little") > 8:  # data sets start at group 0008 at the latest
            raise ValueError("not DICOM")  # (and pydicom would warn about guessed VRs)
        tags = ["SOPClassUID", "SOPInstanceUID"]
        ds = pydicom.dcmread(BytesIO(data), force=True, stop_before_pixels=True, specific_tags=tags)
        meta = pydicom.dataset.FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    except Exception:  # pydicom raises many kinds on what is not DICOM
        raise PacsError("not a DICOM data set (no SOP Class/Instance UID)") from None
    implicit = pydicom.uid.ImplicitVRLittleEndian if ds.original_encoding[0] else None
    syntax = pydicom.uid.UID(transfer_syntax) if transfer_syntax else None
    meta.TransferSyntaxUID = syntax or implicit or pydicom.uid.ExplicitVRLittleEndian
    out = pydicom.filebase.DicomBytesIO()
    pydicom.filewriter.write_file_meta_info(out, meta, enforce_standard=True)
    return bytes(128) + b"DICM" + out.getvalue() + data


def _uid(value: str | None) -> str:
    if not value or len(value) > 64 or not _UID.match(value):
        raise PacsError("not a DICOM UID (digits and dots, at most 64 characters)")
    return value


@cache
def _tag(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    return f"{tag_for_keyword(keyword):08X}"


def _text(element: Any) -> str:
    """A DICOM JSON element as one string: PN -> Alphabetic, multiple values joined by \\."""
    values = element.get("Value") if isinstance(element, dict) else None
    out = []
    for v in values if isinstance(values, list) else []:
        if isinstance(v, dict):
            v = v.get("Alphabetic") or v.get("Ideographic") or v.get("Phonetic") or ""
        out.append("" if v is None else str(v))
    return "\\".join(out)


def _json_items(r: Any) -> list[dict[str, Any]] | None:
    try:
        items = r.json() if r.status_code != 204 and r.content else []
    except ValueError:
        return None
    items = [items] if isinstance(items, dict) else items
    return items if isinstance(items, list) and all(isinstance(i, dict) for i in items) else None
