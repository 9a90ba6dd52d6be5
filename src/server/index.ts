/**
 * The Docker volume plugin server: the Koa app of every endpoint, and the
 * daemon that serves it on a unix socket (`buttervolume run`).
 */
export { createApp, endpoints } from './app.js';
export type { AppOptions } from './app.js';
export { runDaemon } from './daemon.js';
export type { Daemon, DaemonOptions, Stoppable } from './daemon.js';
export type { Endpoint, EndpointRequest, PluginContext } from './endpoint.js';
export { DaemonError, RequestError, errorAnswer } from './errors.js';
export type { DaemonErrorCode, ErrorAnswer, RequestErrorCode } from './errors.js';
export { SOCKET_MODE, socketAnswers } from './socket.js';
