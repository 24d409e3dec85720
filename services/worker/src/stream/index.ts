export * from './messages.js';
export { FrameDecoder, FrameError, encodeFrame, type Frame, type FrameErrorCode, type FrameLimits } from './frames.js';
export {
  InvocationError,
  StreamConnection,
  StreamError,
  type CloseInfo,
  type InvokeReply,
  type InvokeRequest,
  type ReadyInfo,
  type StreamConnectionOptions,
  type StreamErrorCode,
} from './connection.js';
