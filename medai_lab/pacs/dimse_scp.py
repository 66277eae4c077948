"""Instance transfer for the DIMSE client: receiving (C-GET / C-MOVE) and sending (C-STORE).

C-GET sends the instances back over our own association, so we must propose the storage SOP
classes with the SCP role; C-MOVE opens a new association to an AE title the PACS knows, so we
run a short-lived Storage SCP on ``127.0.0.1:<move_port>``. Both hand each instance to the same
:class:`Receiver`, which passes the bytes on untouched (no pixel data is decoded or re-encoded).
:func:`preflight` checks a file before it is C-STOREd as is.
"""

from __future__ import annotations

import logging
import struct
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pydicom import uid as tsuid
from pydicom.errors import InvalidDicomError
from pydicom.filereader import data_element_generator
from pydicom.multival import MultiValue
from pynetdicom import (
    AE,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    AllStoragePresentationContexts,
    build_context,
    build_role,
    evt,
)
from pynetdicom import sop_class as sc
from pynetdicom import status as dimse_status
from pynetdicom.dsutils import split_dataset
from pynetdicom.presentation import PresentationContext

from medai_lab.pacs.base import Sink
from medai_lab.pacs.query import PacsError

_STATUS = {
    "C-ECHO": dimse_status.GENERAL_STATUS,
    "C-FIND": dimse_status.QR_FIND_SERVICE_CLASS_STATUS,
    "C-GET": dimse_status.QR_GET_SERVICE_CLASS_STATUS,
    "C-MOVE": dimse_status.QR_MOVE_SERVICE_CLASS_STATUS,
    "C-STORE": dimse_status.STORAGE_SERVICE_CLASS_STATUS,
}

# A-ASSOCIATE-RQ context IDs are odd bytes 1..255: at most 128 presentation contexts.
MAX_CONTEXTS = 128

UNCOMPRESSED = [tsuid.ExplicitVRLittleEndian, tsuid.ImplicitVRLittleEndian]
# Each offered in a context of its own for the SOP classes a series holds: the PACS picks one
# transfer syntax per context, so a mixed list would let it transcode (PixelData would change).
ENCAPSULATED = [
    tsuid.DeflatedExplicitVRLittleEndian,
    tsuid.ExplicitVRBigEndian,
    tsuid.JPEGBaseline8Bit,
    tsuid.JPEGExtended12Bit,
    tsuid.JPEGLossless,
    tsuid.JPEGLosslessSV1,
    tsuid.JPEGLSLossless,
    tsuid.JPEGLSNearLossless,
    tsuid.JPEG2000Lossless,
    tsuid.JPEG2000,
    tsuid.RLELossless,
]
COMMON_TRANSFER_SYNTAXES = UNCOMPRESSED + ENCAPSULATED
# How many SOP classes get a context per transfer syntax next to the retrieve model's context.
FEW_CLASSES = (MAX_CONTEXTS - 1) // (1 + len(ENCAPSULATED))

# Proposed first when the SOP classes of a series are unknown (C-FIND gave no SOPClassUID).
COMMON_STORAGE: tuple[str, ...] = (
    sc.CTImageStorage,
    sc.EnhancedCTImageStorage,
    sc.MRImageStorage,
    sc.EnhancedMRImageStorage,
    sc.EnhancedMRColorImageStorage,
    sc.SecondaryCaptureImageStorage,
    sc.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    sc.MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    sc.MultiFrameTrueColorSecondaryCaptureImageStorage,
    sc.MultiFrameSingleBitSecondaryCaptureImageStorage,
    sc.UltrasoundImageStorage,
    sc.UltrasoundMultiFrameImageStorage,
    sc.EnhancedUSVolumeStorage,
    sc.RTImageStorage,
    sc.RTDoseStorage,
    sc.RTStructureSetStorage,
    sc.RTPlanStorage,
    sc.SegmentationStorage,
    sc.PositronEmissionTomographyImageStorage,
    sc.EnhancedPETImageStorage,
    sc.NuclearMedicineImageStorage,
    sc.ComputedRadiographyImageStorage,
    sc.DigitalXRayImageStorageForPresentation,
    sc.DigitalXRayImageStorageForProcessing,
    sc.DigitalMammographyXRayImageStorageForPresentation,
    sc.XRayAngiographicImageStorage,
    sc.XRayRadiofluoroscopicImageStorage,
    sc.BreastTomosynthesisImageStorage,
    sc.VLPhotographicImageStorage,
    sc.VLWholeSlideMicroscopyImageStorage,
    sc.BasicTextSRStorage,
    sc.EnhancedSRStorage,
    sc.ComprehensiveSRStorage,
    sc.KeyObjectSelectionDocumentStorage,
    sc.EncapsulatedPDFStorage,
    sc.GrayscaleSoftcopyPresentationStateStorage,
    sc.SpatialRegistrationStorage,
    sc.TwelveLeadECGWaveformStorage,
)


def get_contexts(sop_classes: Iterable[str] | None, reserved: int = 1) -> tuple[list, list]:
    """Storage contexts and SCP role items for a C-GET association.

    Parameters
    ----------
    sop_classes
        Storage SOP classes present in what will be retrieved, or None when unknown.
    reserved
        Contexts kept free for the query/retrieve model itself.

    Returns
    -------
    tuple
        ``(contexts, roles)`` for ``AE.associate(contexts=..., ext_neg=...)``.
    """
    room = MAX_CONTEXTS - reserved
    known = list(dict.fromkeys(sop_classes or ()))
    contexts: list[PresentationContext] = []
    if known and len(known) * (1 + len(ENCAPSULATED)) <= room:
        for uid in known:
            contexts.append(build_context(uid, UNCOMPRESSED))
            contexts.extend(build_context(uid, ts) for ts in ENCAPSULATED)
        classes = known
    else:
        # Unknown or too many classes: one context per class, the PACS chooses the syntax.
        everything = [cx.abstract_syntax for cx in AllStoragePresentationContexts]
        classes = list(dict.fromkeys([*known, *COMMON_STORAGE, *everything]))[:room]
        contexts = [build_context(uid, COMMON_TRANSFER_SYNTAXES) for uid in classes]
    return contexts, [build_role(uid, scp_role=True) for uid in classes]


# pynetdicom binds its standard handlers (module pynetdicom._handlers) to these events of every
# association; they decode and format each PDU and DIMSE message (~1 ms an instance in a
# C-GET) for its INFO/DEBUG log, which we keep off by default.
_LOGGED_EVENTS = (evt.EVT_DIMSE_RECV, evt.EVT_DIMSE_SENT, evt.EVT_PDU_RECV, evt.EVT_PDU_SENT)
_HANDLERS_LOG = logging.getLogger("pynetdicom._handlers")


def unbind_idle_log_handlers(event: Any) -> None:
    """``evt.EVT_CONN_OPEN`` handler: drop pynetdicom's logging handlers when they log nothing.

    When someone turned pynetdicom's log on (e.g. ``debug_logger()``) they stay bound.
    """
    if _HANDLERS_LOG.isEnabledFor(logging.INFO):
        return
    for kind in _LOGGED_EVENTS:
        for handler, _ in list(event.assoc.get_handlers(kind)):
            if getattr(handler, "__module__", "") == _HANDLERS_LOG.name:
                event.assoc.unbind(kind, handler)


QUIET = (evt.EVT_CONN_OPEN, unbind_idle_log_handlers)


class Receiver:
    """Counts the instances a retrieval receives and hands their Part 10 bytes to a sink.

    The sink runs on pynetdicom's threads (one per association). After the first exception
    every further instance is refused at once: the retrieval is going to fail anyway.
    """

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.received = 0
        self.sop_uids: list[str] = []
        self.error: Exception | None = None

    def handle_store(self, event: Any) -> int:
        """``evt.EVT_C_STORE`` handler: 0x0000 when the sink took the instance."""
        if self.error is not None:
            return 0xA700
        try:
            # The dataset exactly as received plus a file meta header: nothing re-encoded.
            data = part10(event)
            self._sink(data)
        except Exception as exc:  # any sink failure must become a C-STORE failure status
            with self._lock:
                if self.error is None:
                    self.error = exc
            # 0xA700 out of resources (disk, permissions), 0xC000 cannot understand.
            return 0xA700 if isinstance(exc, OSError) else 0xC000
        with self._lock:
            self.received += 1
            self.sop_uids.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    @property
    def handlers(self) -> list:
        return [(evt.EVT_C_STORE, self.handle_store)]

    def raise_sink_error(self, op: str) -> None:
        """PacsError carrying the first exception the sink raised, if it raised."""
        if self.error is not None:
            err = self.error
            raise PacsError(
                f"{op}: could not keep a received instance: {type(err).__name__}: {err}"
            ) from err

    def verify(self, op: str, totals: dict[str, int | None], wanted: list[str] | None) -> int:
        """What arrived against the PACS' sub-operation counts (and the requested UIDs)."""
        self.raise_sink_error(op)
        got, reported = self.received, totals["completed"]
        if totals["failed"]:
            raise PacsError(f"{op}: {totals['failed']} instance(s) failed to transfer ({got} ok)")
        if reported is not None and got != reported + (totals["warning"] or 0):
            raise PacsError(f"{op}: received {got} instance(s), the PACS reported {reported}")
        if wanted is not None and set(self.sop_uids) != set(wanted):
            hits = len(set(self.sop_uids) & set(wanted))
            raise PacsError(
                f"{op}: received {hits} of the {len(wanted)} requested instance(s)"
                + (f" and {got - hits} others" if got > hits else "")
            )
        return got


def part10(event: Any) -> bytes:
    """The C-STORE data set of ``event`` as a Part 10 file, bytes as received.

    Byte for byte ``event.encoded_dataset(include_meta=True)``, whose file meta group goes
    through pydicom's writer (~0.7 ms an instance, most of a C-GET's per-instance CPU after
    pynetdicom's own): these seven elements are packed directly instead.
    """
    request = event.request
    uids = (request.AffectedSOPClassUID, request.AffectedSOPInstanceUID)
    syntax = event.context.transfer_syntax
    if not (all(uids) and syntax and all(str(u).isascii() for u in (*uids, syntax))):
        return bytes(event.encoded_dataset(include_meta=True))  # odd cases: pydicom decides
    body = b"".join((
        _META_VERSION,
        _meta_element(0x0002, "UI", str(uids[0])),
        _meta_element(0x0003, "UI", str(uids[1])),
        _meta_element(0x0010, "UI", str(syntax)),
        _META_IMPLEMENTATION,
    ))  # fmt: skip
    head = struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(body))
    return b"".join((_PREAMBLE, head, body, request.DataSet.getvalue()))


def _meta_element(element: int, vr: str, value: str) -> bytes:
    """One (0002,xxxx) element, explicit VR little endian, padded to even length."""
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += b" " if vr == "SH" else b"\x00"
    return struct.pack("<HH2sH", 0x0002, element, vr.encode(), len(raw)) + raw


_PREAMBLE = bytes(128) + b"DICM"
_META_VERSION = struct.pack("<HH2sHI", 0x0002, 0x0001, b"OB", 0, 2) + b"\x00\x01"
_META_IMPLEMENTATION = _meta_element(
    0x0012, "UI", str(PYNETDICOM_IMPLEMENTATION_UID)
) + _meta_element(0x0013, "SH", PYNETDICOM_IMPLEMENTATION_VERSION)


def preflight(path: Path) -> tuple[str, str]:
    """``(SOP class, transfer syntax)`` of a Part 10 file that can be C-STOREd as it is.

    A PACS built on DCMTK (Orthanc) neither answers nor aborts when a dataset is truncated,
    has an odd length or is encoded against its transfer syntax: it waits for more data until
    our DIMSE timeout. So such files are refused here, after a walk over the element headers
    (values are skipped, not read).

    Raises
    ------
    ValueError
        With the reason the file cannot be sent.
    """
    try:
        meta, offset = split_dataset(path)
    except (InvalidDicomError, ValueError, EOFError):
        raise ValueError("not a DICOM Part 10 file (no file meta header)") from None
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
    sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "")
    syntax = tsuid.UID(str(meta.get("TransferSyntaxUID", "") or ""))
    if not sop_class or not syntax:
        raise ValueError("file meta lacks the SOP class or transfer syntax")
    size = path.stat().st_size
    if (size - offset) % 2:
        raise ValueError("dataset has an odd length (malformed file)")
    if not syntax.is_transfer_syntax or syntax.is_deflated:
        return sop_class, syntax  # nothing we can walk: let the PACS judge
    mismatch = False
    with path.open("rb") as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reason below says it better than pydicom's warning
        fp.seek(offset)
        try:
            for elem in data_element_generator(
                fp, syntax.is_implicit_VR, syntax.is_little_endian, defer_size=256
            ):
                # pydicom falls back to implicit VR (VR None) when the VR bytes are not a VR.
                if elem.VR is None and not syntax.is_implicit_VR:
                    mismatch = True
                    break
        except Exception:  # pydicom raises many kinds on garbage: all mean "cannot parse"
            raise ValueError("dataset cannot be parsed") from None
        end = fp.tell()
    if mismatch:
        raise ValueError("dataset is implicit VR but its transfer syntax is explicit")
    if end != size:
        raise ValueError("dataset is truncated or corrupt")
    return sop_class, syntax


@contextmanager
def move_destination(port: int, aet: str, receiver: Receiver, timeout: float) -> Iterator[None]:
    """Run a Storage SCP on ``127.0.0.1:port`` as ``aet`` while the block runs.

    The PACS must know ``aet`` at ``127.0.0.1:port`` (for Orthanc: ``PUT /modalities/<name>``
    with ``{"AET": aet, "Host": "127.0.0.1", "Port": port}``), else C-MOVE fails with
    "move destination unknown".
    """
    ae = AE(ae_title=aet)
    for cx in AllStoragePresentationContexts:
        # As acceptor we take the first syntax the PACS proposes that we know: the stored one.
        ae.add_supported_context(cx.abstract_syntax, COMMON_TRANSFER_SYNTAXES)
    ae.add_supported_context(sc.Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.maximum_pdu_size = 0  # take whatever PDU size the PACS sends
    try:
        handlers = [*receiver.handlers, QUIET]
        server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    except OSError as exc:
        raise PacsError(
            f"cannot listen on 127.0.0.1:{port} for C-MOVE: {exc.strerror or exc}"
        ) from None
    try:
        yield
    finally:
        server.shutdown()


def status_text(op: str, code: int) -> str:
    """``status 0xA700 (Refused: Out of Resources)`` for a DIMSE status of ``op``."""
    meaning = _STATUS[op].get(code, ("", ""))[1]
    return f"status 0x{code:04X}" + (f" ({meaning})" if meaning else "")


def identifier(level: str, keys: dict[str, Any], returns: Sequence[str] = ()) -> Dataset:
    """C-FIND/GET/MOVE identifier: the matching keys plus empty return keys."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8 both ways (names with accents)
    ds.QueryRetrieveLevel = level
    for keyword in returns:
        setattr(ds, keyword, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def as_row(ident: Dataset, keys: Sequence[str]) -> dict[str, str]:
    """C-FIND answer as keyword -> str (``""`` when absent, multiple values joined by ``\\``)."""
    row = {}
    for keyword in keys:
        value = ident.get(keyword)
        if value is None:
            row[keyword] = ""
        elif isinstance(value, MultiValue | list | tuple):
            row[keyword] = "\\".join(str(v) for v in value)
        else:
            row[keyword] = str(value)  # PersonName, IS and DS become their DICOM text
    return row
