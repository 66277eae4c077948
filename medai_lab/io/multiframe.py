"""Per-frame geometry of single-frame, legacy multi-frame and enhanced multi-frame images."""

from __future__ import annotations

from typing import Any

import numpy as np

from medai_lab.io.dims import classic_dims, enhanced_dims
from medai_lab.io.frameinfo import FrameGeometry, NotAnImage, floats, opt_float

# ``header`` arguments are :class:`medai_lab.io.headers.ImageHeader`; not imported, because
# headers imports this module (no loop, not even for type checking).


def _first(seq_owner: Any, seq_keyword: str, keyword: str) -> Any:
    seq = getattr(seq_owner, seq_keyword, None) if seq_owner is not None else None
    if not seq:
        return None
    return getattr(seq[0], keyword, None)


def _lookup(per_frame: Any, shared: Any, seq_keyword: str, keyword: str) -> Any:
    """Enhanced objects put a macro in the per-frame group or in the shared one."""
    value = _first(per_frame, seq_keyword, keyword)
    return value if value is not None else _first(shared, seq_keyword, keyword)


def frame_geometries(ds: Any, header: Any) -> list[FrameGeometry]:
    """Geometry and rescale of every frame in ``ds``.

    Raises
    ------
    NotAnImage
        When position, orientation or pixel spacing is missing: without them a volume's
        geometry would be invented, not read.
    """
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    per_frame = getattr(ds, "PerFrameFunctionalGroupsSequence", None)
    if per_frame is not None:
        shared_seq = getattr(ds, "SharedFunctionalGroupsSequence", None)
        shared = shared_seq[0] if shared_seq else None
        if len(per_frame) != n:
            raise NotAnImage(
                "per-frame functional groups do not match NumberOfFrames", corrupt=True
            )
        frames = []
        top = classic_dims(ds)
        for item in per_frame:
            ipp = floats(_lookup(item, shared, "PlanePositionSequence", "ImagePositionPatient"), 3)
            iop = floats(
                _lookup(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
            )
            ps = floats(_lookup(item, shared, "PixelMeasuresSequence", "PixelSpacing"), 2)
            if ipp is None or iop is None or ps is None:
                raise NotAnImage("no plane position/orientation/pixel spacing in a frame")
            if header.slice_thickness is None:
                header.slice_thickness = opt_float(
                    _lookup(item, shared, "PixelMeasuresSequence", "SliceThickness")
                )
            slope = opt_float(
                _lookup(item, shared, "PixelValueTransformationSequence", "RescaleSlope")
            )
            inter = opt_float(
                _lookup(item, shared, "PixelValueTransformationSequence", "RescaleIntercept")
            )
            dims = top | enhanced_dims(item, shared)
            frames.append(FrameGeometry(ipp, iop, (ps[0], ps[1]), slope or 1.0, inter or 0.0, dims))
        return frames

    ipp = floats(getattr(ds, "ImagePositionPatient", None), 3)
    iop = floats(getattr(ds, "ImageOrientationPatient", None), 6)
    ps = floats(getattr(ds, "PixelSpacing", None), 2)
    if ipp is None or iop is None:
        raise NotAnImage("no ImagePositionPatient/ImageOrientationPatient (not a cross-section)")
    if ps is None:
        raise NotAnImage("no PixelSpacing")
    slope = opt_float(getattr(ds, "RescaleSlope", None))
    inter = opt_float(getattr(ds, "RescaleIntercept", None))
    slope = 1.0 if slope is None else slope
    inter = 0.0 if inter is None else inter
    dims = classic_dims(ds)
    if n == 1:
        return [FrameGeometry(ipp, iop, (ps[0], ps[1]), slope, inter, dims)]
    # Legacy multi-frame: frames stacked along the normal, one slice spacing apart.
    step = header.spacing_between_slices or header.slice_thickness
    if not step:
        raise NotAnImage("multi-frame image without SpacingBetweenSlices/SliceThickness")
    normal = np.cross(iop[:3], iop[3:])
    return [
        FrameGeometry(ipp + k * step * normal, iop, (ps[0], ps[1]), slope, inter, dict(dims))
        for k in range(n)
    ]


def siemens_mosaic(ds: Any, header: Any) -> None:
    """Turn a Siemens mosaic (many slices tiled in one image) into one frame per tile.

    The stored ImagePositionPatient is the corner of the whole mosaic; each tile's true
    position is shifted by half the size difference, and tiles stack along the CSA
    SliceNormalVector (whose sign sets the slice order, so it is not taken from the cosines).
    """
    image_type = [str(v).upper() for v in (getattr(ds, "ImageType", None) or [])]
    if "MOSAIC" not in image_type or "SIEMENS" not in header.manufacturer.upper():
        return
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader

        try:
            csa = csareader.get_csa_header(ds, "image")
        except Exception:  # a damaged private header: fall back to the public tags
            csa = None
    n = csareader.get_n_mosaic(csa) if csa else None
    if n is None:
        value = ds.get((0x0019, 0x100A))
        n = int(value.value) if value is not None and value.value else None
    if not n:
        raise NotAnImage("Siemens mosaic without NumberOfImagesInMosaic")
    normal = csareader.get_slice_normal(csa) if csa else None
    frame = header.frames[0]
    row_cos, col_cos = frame.iop[:3], frame.iop[3:]
    normal = np.asarray(normal, dtype=float) if normal is not None else np.cross(row_cos, col_cos)
    tiles = int(np.ceil(np.sqrt(n)))
    if header.rows % tiles or header.columns % tiles:
        raise NotAnImage("mosaic size is not a whole number of tiles", corrupt=True)
    rows, cols = header.rows // tiles, header.columns // tiles
    dy, dx = frame.spacing
    corner = (
        frame.ipp
        + row_cos * dx * (header.columns - cols) / 2
        + col_cos * dy * (header.rows - rows) / 2
    )
    step = header.spacing_between_slices or header.slice_thickness
    if not step:
        raise NotAnImage("mosaic without SpacingBetweenSlices/SliceThickness")
    header.rows, header.columns, header.mosaic_tiles = rows, cols, tiles
    header.frames = [
        FrameGeometry(
            corner + k * step * normal,
            frame.iop,
            frame.spacing,
            frame.slope,
            frame.intercept,
            dict(frame.dims),
        )
        for k in range(n)
    ]


def demosaic(arr: np.ndarray, tiles: int, n: int) -> np.ndarray:
    """(rows*tiles, cols*tiles) mosaic to (n, rows, cols) tiles, row-major tile order."""
    rows, cols = arr.shape[0] // tiles, arr.shape[1] // tiles
    blocks = arr.reshape(tiles, rows, tiles, cols).transpose(0, 2, 1, 3).reshape(-1, rows, cols)
    return blocks[:n]
