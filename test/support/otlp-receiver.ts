import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import protobuf from "protobufjs";

// The part of opentelemetry-proto (collector/trace/v1, trace/v1, common/v1, resource/v1) that
// a span needs; field numbers as in the spec, unknown fields (events) are skipped on decode.
const PROTO = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  fixed32 flags = 16; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Link links = 13; uint32 dropped_links_count = 14;
}
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value {
    string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4;
    ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
`;
const ExportRequest = protobuf.parse(PROTO).root.lookupType("ExportTraceServiceRequest");

export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** A received span, the same whichever wire format carried it. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly attributes: Record<string, unknown>;
  readonly links: { traceId: string; spanId: string }[];
  readonly resource: Record<string, unknown>;
  readonly format: "protobuf" | "json";
}

interface WireKeyValue {
  key: string;
  value?: Record<string, unknown>;
}

/** An OTLP/HTTP trace receiver on 127.0.0.1: `http/protobuf` and `http/json`, as a collector. */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  port = 0;
  private readonly server: Server;

  private constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        try {
          let body = Buffer.concat(chunks);
          if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
          if (req.method !== "POST" || req.url !== "/v1/traces")
            throw new Error(`unexpected ${req.method} ${req.url}`);
          const type = req.headers["content-type"] ?? "";
          this.requests++;
          this.accept(body, type);
          res.writeHead(200, {
            "content-type": type.includes("json") ? "application/json" : "application/x-protobuf",
          });
          res.end(type.includes("json") ? "{}" : Buffer.alloc(0));
        } catch (error) {
          res.writeHead(400);
          res.end(String(error));
        }
      });
    });
  }

  static async start(): Promise<OtlpReceiver> {
    const receiver = new OtlpReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, "127.0.0.1", resolve));
    receiver.port = (receiver.server.address() as AddressInfo).port;
    return receiver;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  trace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(body: Buffer, contentType: string): void {
    if (contentType.includes("application/x-protobuf")) {
      const decoded = ExportRequest.toObject(ExportRequest.decode(body), {
        longs: String,
        bytes: String,
      });
      this.collect(decoded, "protobuf", (b) =>
        typeof b === "string" ? Buffer.from(b, "base64").toString("hex") : "",
      );
    } else if (contentType.includes("application/json")) {
      // OTLP/JSON carries trace and span ids as hex strings and keys in lowerCamelCase.
      this.collect(JSON.parse(body.toString("utf8")) as Record<string, unknown>, "json", (b) =>
        typeof b === "string" ? b : "",
      );
    } else throw new Error(`unsupported content type ${contentType}`);
  }

  private collect(
    request: Record<string, unknown>,
    format: "protobuf" | "json",
    id: (v: unknown) => string,
  ): void {
    const get = (o: unknown, camel: string, snake: string): unknown =>
      (o as Record<string, unknown>)[camel] ?? (o as Record<string, unknown>)[snake];
    for (const rs of (get(request, "resourceSpans", "resource_spans") ?? []) as unknown[]) {
      const resource = attributes(
        (get(rs, "resource", "resource") as { attributes?: WireKeyValue[] } | undefined)
          ?.attributes,
      );
      for (const ss of (get(rs, "scopeSpans", "scope_spans") ?? []) as unknown[])
        for (const span of (get(ss, "spans", "spans") ?? []) as Record<string, unknown>[])
          this.spans.push({
            traceId: id(get(span, "traceId", "trace_id")),
            spanId: id(get(span, "spanId", "span_id")),
            parentSpanId: id(get(span, "parentSpanId", "parent_span_id")),
            name: String(span.name),
            kind: Number(span.kind),
            attributes: attributes(span.attributes as WireKeyValue[]),
            links: ((span.links ?? []) as Record<string, unknown>[]).map((l) => ({
              traceId: id(get(l, "traceId", "trace_id")),
              spanId: id(get(l, "spanId", "span_id")),
            })),
            resource,
            format,
          });
    }
  }
}

function attributes(list: WireKeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) out[key] = anyValue(value);
  return out;
}

function anyValue(value: Record<string, unknown> | undefined): unknown {
  if (!value) return undefined;
  for (const key of [
    "stringValue",
    "string_value",
    "boolValue",
    "bool_value",
    "doubleValue",
    "double_value",
  ])
    if (value[key] !== undefined) return value[key];
  for (const key of ["intValue", "int_value"])
    if (value[key] !== undefined) return Number(value[key]);
  return undefined;
}
