// Hand-written protobuf for grpc.health.v1's two messages: one string field in, one enum out.
// A proto loader at run time (and its dependency tree) for 20 lines of varint code was passed over.

/** grpc.health.v1.HealthCheckResponse.ServingStatus, by wire value. */
export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;

/** Encodes HealthCheckRequest { string service = 1; } (empty service → empty message). */
export function encodeHealthCheckRequest(req: { service?: string }): Buffer {
  const service = Buffer.from(req.service ?? '', 'utf8');
  if (service.length === 0) return Buffer.alloc(0);
  const len = encodeVarint(service.length);
  return Buffer.concat([Buffer.from([0x0a]), len, service]);
}

/** Decodes HealthCheckRequest; unknown fields are skipped. */
export function decodeHealthCheckRequest(buf: Buffer): { service: string } {
  let service = '';
  walkFields(buf, (field, wireType, value) => {
    if (field === 1 && wireType === 2 && Buffer.isBuffer(value)) service = value.toString('utf8');
  });
  return { service };
}

/** Encodes HealthCheckResponse { ServingStatus status = 1; }. */
export function encodeHealthCheckResponse(res: { status: number }): Buffer {
  if (res.status === 0) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from([0x08]), encodeVarint(res.status)]);
}

/** Decodes HealthCheckResponse into its numeric status (0 = UNKNOWN when absent). */
export function decodeHealthCheckResponse(buf: Buffer): { status: number } {
  let status = 0;
  walkFields(buf, (field, wireType, value) => {
    if (field === 1 && wireType === 0 && typeof value === 'number') status = value;
  });
  return { status };
}

/** Names a serving status value as in health.proto, or "status <n>" for unknown values. */
export function servingStatusName(status: number): string {
  return SERVING_STATUS[status] ?? `status ${status}`;
}

function encodeVarint(n: number): Buffer {
  const bytes: number[] = [];
  let v = n;
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return Buffer.from(bytes);
}

/** Nesting of skipped groups the kubelet's decoder allows (protowire's recursion limit, 10,000, plus the outermost). */
const MAX_GROUP_DEPTH = 10_001;

function walkFields(buf: Buffer, visit: (field: number, wireType: number, value: number | Buffer) => void): void {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error('varint too long');
  };
  // Skips a field's value; a group's fields are skipped in turn up to its own end-group tag, with
  // `open` holding the field numbers of the groups not yet ended (a loop, not recursion: the
  // nesting a message can ask for is bounded by MAX_GROUP_DEPTH, not by the stack).
  const skip = (field: number, wireType: number): void => {
    const open: number[] = [];
    for (let [f, wt] = [field, wireType]; ; ) {
      if (wt === 0) varint();
      else if (wt === 1) pos += 8;
      else if (wt === 2) {
        const len = varint();
        pos += len;
      } else if (wt === 5) pos += 4;
      else if (wt === 3) {
        if (open.length === MAX_GROUP_DEPTH) throw new Error(`groups nested over ${MAX_GROUP_DEPTH} deep`);
        open.push(f);
      } else if (wt === 4) {
        if (open.pop() !== f) throw new Error(`end-group tag of field ${f} closes no group of that field`);
      } else throw new Error(`unsupported wire type ${wt}`);
      if (pos > buf.length) throw new Error('truncated field');
      if (open.length === 0) return;
      const key = varint();
      f = Math.floor(key / 8);
      wt = key & 7;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (wireType === 0) visit(field, wireType, varint());
    else if (wireType === 2) {
      const len = varint();
      if (pos + len > buf.length) throw new Error('truncated field');
      visit(field, wireType, buf.subarray(pos, pos + len));
      pos += len;
    } else skip(field, wireType);
  }
}
