// A small ONNX model built by hand, so the runtime test needs no model file from anywhere: the
// graph Y = MatMul(X, W) + B with W [k, n] and B [n] as initializers, encoded with a minimal
// protobuf writer (onnx.proto3 field numbers).
import { randomBytes } from 'node:crypto';

/** A protobuf message being written: fields in the order they are added. */
class Message {
  readonly #parts: Buffer[] = [];

  varint(field: number, value: number): this {
    this.#parts.push(varint(field * 8), varint(value));
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#parts.push(varint(field * 8 + 2), varint(value.length), Buffer.from(value));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  message(field: number, value: Message): this {
    return this.bytes(field, value.encode());
  }

  encode(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

function tensor(name: string, dims: number[], values: Float32Array): Message {
  const t = new Message();
  for (const d of dims) t.varint(1, d); // dims
  t.varint(2, FLOAT); // data_type
  t.string(8, name);
  return t.bytes(9, Buffer.from(values.buffer, values.byteOffset, values.byteLength)); // raw_data
}

function valueInfo(name: string, dims: number[]): Message {
  const shape = new Message();
  for (const d of dims) shape.message(1, new Message().varint(1, d)); // dim { dim_value }
  const tensorType = new Message().varint(1, FLOAT).message(2, shape); // elem_type, shape
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

function node(op: string, inputs: string[], output: string): Message {
  const n = new Message();
  for (const i of inputs) n.string(1, i);
  return n.string(2, output).string(3, op.toLowerCase()).string(4, op);
}

/** Floats in [-1, 1) from fresh random bytes: no two test runs share a model. */
export function randomFloats(count: number): Float32Array {
  const raw = randomBytes(count * 4);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = raw.readUInt32LE(i * 4) / 2 ** 31 - 1;
  return out;
}

export interface AffineModel {
  /** The .onnx file's bytes. */
  bytes: Buffer;
  k: number;
  n: number;
  w: Float32Array;
  b: Float32Array;
  /** Where W's raw floats sit in `bytes`. */
  weightsOffset: number;
}

/** Y[1, n] = X[1, k] · W[k, n] + B[n], opset 13, IR version 8. */
export function affineModel(k: number, n: number): AffineModel {
  const w = randomFloats(k * n);
  const b = randomFloats(n);
  const graph = new Message()
    .message(1, node('MatMul', ['X', 'W'], 'XW'))
    .message(1, node('Add', ['XW', 'B'], 'Y'))
    .string(2, 'affine')
    .message(5, tensor('W', [k, n], w))
    .message(5, tensor('B', [n], b))
    .message(11, valueInfo('X', [1, k]))
    .message(12, valueInfo('Y', [1, n]));
  const bytes = new Message()
    .varint(1, 8) // ir_version
    .string(2, 'sluice-e2e') // producer_name
    .message(7, graph)
    .message(8, new Message().string(1, '').varint(2, 13)) // opset_import: ai.onnx 13
    .encode();
  const weights = Buffer.from(w.buffer, w.byteOffset, w.byteLength);
  return { bytes, k, n, w, b, weightsOffset: bytes.indexOf(weights.subarray(0, 64)) };
}

/** What the model computes, in float64: the reference the runtime's output is checked against. */
export function affine(m: AffineModel, x: Float32Array): Float64Array {
  const y = new Float64Array(m.n);
  for (let j = 0; j < m.n; j++) {
    let sum = m.b[j] as number;
    for (let i = 0; i < m.k; i++) sum += (x[i] as number) * (m.w[i * m.n + j] as number);
    y[j] = sum;
  }
  return y;
}
