/** Small helpers over @grpc/grpc-js: promise-returning unary calls, server start, error mapping. */
import * as grpc from '@grpc/grpc-js';
import { fromGrpcError, toGrpcError } from './errors';
import { limits } from './limits';

type UnaryMethod<Req, Res> = (
  req: Req, metadata: grpc.Metadata, options: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method with a deadline; failures come back as GfsError. */
export function callUnary<Req, Res>(
  client: grpc.Client, method: UnaryMethod<Req, Res>, req: Req, timeoutMs: number = limits.rpcTimeoutMs,
  headers: Record<string, string> = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    method.call(client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(fromGrpcError(err, client.getChannel().getTarget()));
      else resolve(res);
    });
  });
}

/** Wraps an async handler as a grpc-js unary handler that maps GfsError to status + metadata. */
export function unaryHandler<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request).then((res) => callback(null, res), (e) => callback(toGrpcError(e) as grpc.ServiceError));
  };
}

export const grpcChannelOptions: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': limits.grpcMessageBytesMax,
  'grpc.max_send_message_length': limits.grpcMessageBytesMax,
  'grpc.keepalive_time_ms': limits.grpcKeepaliveMs,
  'grpc.keepalive_timeout_ms': limits.grpcKeepaliveTimeoutMs,
  'grpc.initial_reconnect_backoff_ms': limits.grpcReconnectBackoffMinMs,
  'grpc.max_reconnect_backoff_ms': limits.grpcReconnectBackoffMaxMs,
};

export async function bindServer(server: grpc.Server, listen: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}
