// Shared types for the viewer (see ../../PROTOCOL.md).

export type Vec3 = [number, number, number];
export type PlaneName = "axial" | "coronal" | "sagittal";
export const PLANES: readonly PlaneName[] = ["axial", "coronal", "sagittal"];

export type Dtype = "int8" | "uint8" | "int16" | "uint16" | "int32" | "uint32" | "float32" | "float64";

export type TypedArr = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

export interface LabelInfo {
  value: number;
  name: string;
  color: [number, number, number];
}

export interface Meta {
  shape: Vec3;
  spacing: Vec3;
  affine: number[][];
  dtype: Dtype;
  range: [number, number];
  percentiles?: [number, number];
  modality?: string;
  volumes?: string[];
  labels?: LabelInfo[];
  /** Labels one can paint (names from the label dictionary), PROTOCOL.md "Editing". */
  dictionary?: LabelInfo[];
  editable?: boolean;
  /** Volumes of a 4-D series (1 for a 3-D image) and what its 4th axis is. */
  frames?: number;
  axis4?: { name: string; unit: string; values: number[] } | null;
  title?: string;
  height?: number;
}

/** One resolution level of one volume, being assembled or complete. */
export interface Level {
  volume: string;
  level: number;
  shape: Vec3;
  factor: Vec3;
  dtype: Dtype;
  nbytes: number;
  chunks: number;
  codec: "deflate" | "raw";
  shuffle: boolean;
  buffer: ArrayBuffer;
  data: TypedArr;
  decodedChunks: number;
  decodedBytes: number;
  ended: boolean;
  complete: boolean;
}

/** The subset of the anywidget model API the viewer uses. */
export interface AnyModel {
  get(name: string): any;
  set(name: string, value: unknown): void;
  save_changes(): void;
  on(event: string, cb: (...args: any[]) => void): void;
  off(event?: string | null, cb?: ((...args: any[]) => void) | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: ArrayBuffer[] | ArrayBufferView[]): void;
}

export type OverlayMode = "labels" | "prediction" | "compare" | "none";
export type Layout = "three" | PlaneName;
export type Convention = "radiological" | "neurological";
