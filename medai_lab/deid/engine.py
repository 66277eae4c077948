"""De-identify one DICOM file held in memory, without decoding its pixel data."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from medai_lab import __version__
from medai_lab.deid.codec import (
    DicomFile,
    Elem,
    Malformed,
    encode_meta,
    meta_value,
    parse_file,
    write_parts,
)
from medai_lab.deid.dictionary import (
    dictionary_vr,
    keyword,
    registered_uids,
    tag_for,
    vr_allowed,
)
from medai_lab.deid.keys import Keyed
from medai_lab.deid.pixelstep import PixelResult, check_policy, require_engine
from medai_lab.deid.pixelstep import run as pixel_step
from medai_lab.deid.private import SafePrivate
from medai_lab.deid.profile import Profile, load_data
from medai_lab.deid.values import TEXT_VRS, TextCleaner, dummy, shift_dates, tokens_of

# (group, element) of the attributes this module sets itself
PATIENT_NAME, PATIENT_ID, ISSUER = 0x00100010, 0x00100020, 0x00100021
SOP_CLASS, SOP_INSTANCE = 0x00080016, 0x00080018
STUDY_UID, SERIES_UID = 0x0020000D, 0x0020000E
MODALITY, BURNED_IN, PIXEL_DATA = 0x00080060, 0x00280301, 0x7FE00010
IDENTITY_REMOVED, METHOD, METHOD_CODES = 0x00120062, 0x00120063, 0x00120064
TEMPORAL_MODIFIED = 0x00280303
IMPLEMENTATION_UID = (
    b"2.25."
    + str(int.from_bytes(hashlib.sha256(b"medai-lab implementation").digest()[:16], "big")).encode()
)
IMPLEMENTATION_NAME = b"MEDAI_LAB_" + __version__.replace(".", "").encode()
_DATE_VRS = ("DA", "DT")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_CODE = re.compile(r"[A-Z0-9_ ]{0,16}")
_TEMPORAL = {"remove": b"REMOVED", "keep": b"UNMODIFIED", "shift": b"MODIFIED"}


@dataclass
class Outcome:
    """What became of one file: parts to write, or the reason it is quarantined."""

    parts: list[bytes | memoryview] | None = None
    reason: str = ""
    uids: tuple[str, str, str] = ("", "", "")  # new study, series, SOP instance UIDs
    counts: Counter[str] = field(default_factory=Counter)
    link: dict[str, str] | None = None
    pixels: PixelResult = field(default_factory=PixelResult)


def _text(e: Elem | None) -> bytes:
    if e is None or isinstance(e.value, list):
        return b""
    return bytes(e.value).rstrip(b"\x00 ").lstrip(b" ")


def _el(tag: int, vr: str, value: bytes) -> Elem:
    if len(value) % 2:
        value += b"\x00" if vr in ("UI", "OB") else b" "
    return Elem(tag, vr, value)


class Deidentifier:
    """Applies one :class:`Profile` under one key; reusable across files (caches UIDs)."""

    def __init__(
        self,
        key: bytes,
        options: Iterable[str] = (),
        *,
        allow_burned_in: bool = False,
        linkage: bool = False,
        pixels: str = "redact",
    ) -> None:
        self.profile = Profile.build(options)
        self.keyed = Keyed(key)
        self.allow_burned_in = allow_burned_in
        # "off": headers only, likely burned-in text quarantined by rule (see rules.json);
        # "redact" / "quarantine": every file with pixels goes through OCR (pixelstep)
        self.pixels = check_policy(pixels)
        require_engine(pixels)
        self.linkage = linkage
        rules = load_data("rules.json")
        self._by_vr = {k: v for k, v in rules["default_by_vr"].items() if k != "note"}
        self._safe = frozenset(rules["safe_keywords"])
        self._burned = rules["burned_in"]
        self._clean_pixels = rules["clean_pixels"]
        self._not_pictures = frozenset(rules["pixels_not_checked"]["sop_classes"])
        self._refuse: dict[str, str] = rules["quarantine_sop_classes"]
        self._identity = [tag_for(k) for k in rules["identity_keywords"]["keywords"]]
        self._defaults: dict[tuple[int, str], str] = {}
        self._private = SafePrivate.load() if self.profile.private == "C" else None
        self._registered = registered_uids()

    # ---- one file -------------------------------------------------------------------------
    def process(self, buf: bytes) -> Outcome:
        """De-identify the bytes of one Part 10 file."""
        try:
            parsed = parse_file(buf, dictionary_vr)
        except Malformed as exc:
            return Outcome(reason=f"malformed: {exc}")
        top = {e.tag: e for e in parsed.dataset}
        sop_class = _text(top.get(SOP_CLASS)) or meta_value(parsed.meta, 0x00020002).encode()
        # reasons may quote these two values, so they must be what their VRs allow
        if not _UID.fullmatch(sop_class.decode("latin-1")):
            return Outcome(reason="malformed: no valid SOP Class UID")
        if not _CODE.fullmatch(_text(top.get(MODALITY)).decode("latin-1")):
            return Outcome(reason="malformed: Modality is not a code string")
        refused = self._refuse.get(sop_class.decode("ascii", "replace"))
        if refused:
            return Outcome(reason=refused)
        if self.pixels == "off" and not self.allow_burned_in:
            reason = self._burned_in(top, sop_class)
            if reason:
                return Outcome(reason=reason)
        ctx = _FileContext(self, parsed, top)
        try:
            dataset = self._apply(parsed.dataset, ctx)
        except Malformed as exc:
            return Outcome(reason=f"malformed: {exc}")
        dataset = _merge(dataset, ctx.additions(sop_class))
        meta = encode_meta(
            [
                Elem(0x00020001, "OB", b"\x00\x01"),
                _el(0x00020002, "UI", sop_class),
                _el(0x00020003, "UI", ctx.sop_uid),
                _el(0x00020010, "UI", parsed.syntax.encode()),
                _el(0x00020012, "UI", IMPLEMENTATION_UID),
                _el(0x00020013, "SH", IMPLEMENTATION_NAME),
            ]
        )
        uids = (ctx.study_uid.decode(), ctx.series_uid.decode(), ctx.sop_uid.decode())
        parts = write_parts(parsed, meta, dataset)
        if not ctx.pixels_checked:
            return Outcome(parts, "", uids, ctx.counts, ctx.link())
        data, reason, pixels = pixel_step(b"".join(parts), self.pixels)
        parts = None if data is None else [data]
        return Outcome(parts, reason, uids, ctx.counts, ctx.link(), pixels)

    def _burned_in(self, top: dict[int, Elem], sop_class: bytes) -> str:
        if _text(top.get(BURNED_IN)).upper() == b"YES":
            return "burned-in annotation: BurnedInAnnotation is YES"
        modality = _text(top.get(MODALITY)).decode("ascii", "replace").upper()
        if modality in self._burned["modalities"]:
            return f"burned-in annotation likely: modality {modality} often carries text in pixels"
        cls = sop_class.decode("ascii", "replace")
        if any(cls.startswith(p) for p in self._burned["sop_class_prefixes"]):
            return f"burned-in annotation likely: SOP class {cls} often carries text in pixels"
        return ""

    # ---- rules ----------------------------------------------------------------------------
    def _default(self, tag: int, vr: str) -> str:
        """Action for an attribute the table does not list (see data/rules.json)."""
        key = (tag, vr)
        action = self._defaults.get(key)
        if action is not None:
            return action
        known = dictionary_vr(tag)
        if vr == "UN" and known == "SQ":
            action = "X"  # a sequence we could not read as one: its items are unchecked
        elif vr == "SQ" or keyword(tag) in self._safe:
            action = "K"
        else:
            rule = self._by_vr.get(vr if vr != "UN" or known == "UN" else known, "K")
            mode = self.profile.date_mode
            action = {
                "uid": "K" if self.profile.has("retain-uids") else "U",
                "date": {"remove": "X", "keep": "K", "shift": "C"}[mode],
                "time": "X" if mode == "remove" else "K",
                "text": "C" if self.profile.has("clean-descriptors") else "X",
            }.get(rule, rule)
        self._defaults[key] = action
        return action

    def _apply(self, elems: list[Elem], ctx: _FileContext) -> list[Elem]:
        profile, counts = self.profile, ctx.counts
        actions, overlays = profile.actions, profile.overlays
        out: list[Elem] = []
        privates = [e for e in elems if e.tag >> 16 & 1] if self._private else []
        keep_private = self._private.select(privates) if privates else {}
        for e in elems:
            tag = e.tag
            group = tag >> 16
            if group & 1:
                action = keep_private.get(tag)
                if action is None:
                    counts["private_removed"] += 1
                    continue
            elif group <= 2 or not tag & 0xFFFF:
                counts["X"] += 1  # command, file meta or group length: not dataset content
                continue
            else:
                action = actions.get(tag)
                if action is None:
                    high = group & 0xFF00
                    if high == 0x5000:
                        action = profile.curves
                    elif high == 0x6000:
                        action = overlays.get(tag & 0xFFFF) or self._default(tag, e.vr)
                    else:
                        action = self._default(tag, e.vr)
            if not vr_allowed(tag, e.vr) or (e.vr == "UN" and dictionary_vr(tag) == "SQ"):
                action = "X"  # a VR the dictionary does not allow: do not trust the value
            if action == "K":
                if isinstance(e.value, list):
                    e = self._sequence(e, ctx)
                out.append(e)
            elif action != "X":
                new = self._act(e, action, ctx)
                if new is None:
                    action = "X"
                else:
                    out.append(new)
            counts[action] += 1
        return out

    def _sequence(self, e: Elem, ctx: _FileContext) -> Elem:
        items = [self._apply(item, ctx) for item in e.value]
        same = (
            len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
            for a, b in zip(items, e.value, strict=True)
        )
        if all(same):
            return e  # nothing inside changed: copy it as it is
        return Elem(e.tag, "SQ", items)

    def _act(self, e: Elem, action: str, ctx: _FileContext) -> Elem | None:
        """Z, D, U or C on one element; ``None`` means remove it."""
        vr, value = e.vr, e.value
        if isinstance(value, list):
            if action == "Z":
                return Elem(e.tag, "SQ", [])
            if action == "D":
                return Elem(e.tag, "SQ", [[]])  # one empty item: present, carrying nothing
            return self._sequence(e, ctx)  # U or C: keep the structure, treat every item
        if action == "Z":
            return Elem(e.tag, vr, b"")
        if vr == "UN" and action in ("U", "C"):
            return None  # an unparsed value cannot be rewritten safely
        if action == "U" or (action == "D" and vr == "UI"):
            return self._uid(e)
        if action == "D" or (action == "C" and vr == "PN"):
            return Elem(e.tag, vr, dummy(vr, len(value)))
        # C: clean
        if vr in _DATE_VRS:
            if self.profile.date_mode != "shift":
                return Elem(e.tag, vr, dummy(vr, len(value)))
            shifted = shift_dates(bytes(value), vr, ctx.shift)
            if shifted is None:
                return None  # a date we cannot read cannot be shifted: remove it
            ctx.counts["dates_shifted"] += 1
            return Elem(e.tag, vr, shifted)
        if vr in TEXT_VRS:
            return Elem(e.tag, vr, ctx.cleaner().clean(bytes(value)))
        return e  # binary content (overlay bitmaps, curves) kept under Clean Graphics

    def _uid(self, e: Elem) -> Elem:
        values = bytes(e.value).rstrip(b"\x00 ").split(b"\\")
        registered, uid = self._registered, self.keyed.uid
        new = b"\\".join(v if (not v or v in registered) else uid(v.strip()) for v in values)
        return _el(e.tag, "UI", new)


class _FileContext:
    """Per-file state: identity, derived UIDs, the text cleaner and action counts."""

    def __init__(self, deid: Deidentifier, parsed: DicomFile, top: dict[int, Elem]) -> None:
        self.deid, self.parsed, self.top = deid, parsed, top
        cls = _text(top.get(SOP_CLASS)) or meta_value(parsed.meta, 0x00020002).encode()
        sop_class = cls.decode("ascii", "replace")
        self.pixels_checked = (
            deid.pixels != "off" and PIXEL_DATA in top and sop_class not in deid._not_pictures
        )
        self.counts: Counter[str] = Counter()
        pid, issuer = _text(top.get(PATIENT_ID)), _text(top.get(ISSUER))
        name = _text(top.get(PATIENT_NAME))
        self.identity = (issuer + b"\x00" + pid) if pid else name
        keyed = deid.keyed
        self.shift = keyed.shift_days(self.identity)
        self._cleaner: TextCleaner | None = None
        keep = deid.profile.has("retain-uids")
        study = _text(top.get(STUDY_UID))
        series = _text(top.get(SERIES_UID))
        sop = _text(top.get(SOP_INSTANCE)) or meta_value(parsed.meta, 0x00020003).encode()
        self.orig_study = study
        self.study_uid = (study if keep else keyed.uid(study)) if study else self._derived_study()
        if series:
            self.series_uid = series if keep else keyed.uid(series)
        else:
            # instances of one series share these; the key keeps the result unguessable
            values = self._values(
                0x00200011, 0x00080060, 0x00080021, 0x00080031, 0x0008103E, 0x00200052
            )
            self.series_uid = keyed.derived_uid("series", self.study_uid, *values)
        if sop:
            self.sop_uid = sop if keep else keyed.uid(sop)
        else:
            self.sop_uid = keyed.derived_uid("sop", hashlib.sha256(parsed.buffer).digest())

    def _values(self, *tags: int) -> list[bytes]:
        return [_text(self.top.get(t)) for t in tags]

    def _derived_study(self) -> bytes:
        values = self._values(0x00080020, 0x00080030, 0x00080050, 0x00200010)
        return self.deid.keyed.derived_uid("study", self.identity, *values)

    def cleaner(self) -> TextCleaner:
        if self._cleaner is None:
            tokens: list[bytes] = []
            for tag in self.deid._identity:
                tokens.extend(tokens_of(_text(self.top.get(tag))))
            self._cleaner = TextCleaner(tokens)
        return self._cleaner

    def additions(self, sop_class: bytes) -> dict[int, Elem]:
        profile = self.deid.profile
        pseudonym = self.deid.keyed.pseudonym(self.identity) if self.identity else b""
        self.counts["pseudonymised"] += 2 if pseudonym else 0
        items = [_code_item(code, meaning) for code, meaning in profile.codes()]
        temporal = _TEMPORAL[profile.date_mode]
        methods = [f"MedAI Lab {__version__}", *profile.describe()]
        burned: dict[int, Elem] = {}
        # Pixel Data is OCR-checked next: what is found is redacted or the file is not
        # written. (Float pixel data is not checked: no claim is made for it.)
        if self.pixels_checked:
            clean = self.deid._clean_pixels
            items.append(_code_item(clean["code"], clean["meaning"]))
            methods.append(clean["method"][self.deid.pixels])
            burned[BURNED_IN] = _el(BURNED_IN, "CS", b"NO")
        method = b"\\".join(m.encode() for m in methods)
        adds = [
            _el(SOP_CLASS, "UI", sop_class),
            _el(SOP_INSTANCE, "UI", self.sop_uid),
            _el(PATIENT_NAME, "PN", pseudonym),
            _el(PATIENT_ID, "LO", pseudonym),
            _el(IDENTITY_REMOVED, "CS", b"YES"),
            _el(METHOD, "LO", method),
            Elem(METHOD_CODES, "SQ", items),
            _el(STUDY_UID, "UI", self.study_uid),
            _el(SERIES_UID, "UI", self.series_uid),
            _el(TEMPORAL_MODIFIED, "CS", temporal),
        ]
        return {e.tag: e for e in adds} | burned

    def link(self) -> dict[str, str] | None:
        if not self.deid.linkage:
            return None
        t = self.top
        return {
            "original_patient_id": _text(t.get(PATIENT_ID)).decode("utf-8", "replace"),
            "original_patient_name": _text(t.get(PATIENT_NAME)).decode("utf-8", "replace"),
            "pseudonym": self.deid.keyed.pseudonym(self.identity).decode() if self.identity else "",
            "original_study_uid": self.orig_study.decode("ascii", "replace"),
            "study_uid": self.study_uid.decode(),
        }


def _code_item(code: str, meaning: str) -> list[Elem]:
    return [
        _el(0x00080100, "SH", code.encode()),
        _el(0x00080102, "SH", b"DCM"),
        _el(0x00080104, "LO", meaning.encode()),
    ]


def _merge(elems: list[Elem], adds: dict[int, Elem]) -> list[Elem]:
    """``elems`` with ``adds`` replacing or inserted at their tag (order kept)."""
    out: list[Elem] = []
    pending = sorted(adds.values(), key=lambda e: e.tag)
    i = 0
    for e in elems:
        while i < len(pending) and pending[i].tag < e.tag:
            out.append(pending[i])
            i += 1
        if i < len(pending) and pending[i].tag == e.tag:
            out.append(pending[i])
            i += 1
        else:
            out.append(e)
    out.extend(pending[i:])
    return out
