#include "stream_jobs.h"

#include <fcntl.h>
#include <unistd.h>

#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <variant>

#include "../core/path.h"
#include "../core/queue_source.h"
#include "../core/receive.h"
#include "../core/send.h"
#include "../core/send_prefetch.h"
#include "../core/subvolume.h"
#include "../core/tree_search.h"
#include "convert.h"
#include "errors.h"

namespace bv::napi {

namespace {

// Fewer wake-ups per MB moved: the largest pipe an unprivileged process gets by default.
constexpr int kPipeSize = 1 << 20;
// Bytes of input queued for the receiver before JS is asked to wait (as much as its reader's buffer).
constexpr size_t kInputQueueLimit = 4 << 20;

struct Pipe {
  int read = -1, write = -1;
};

Pipe make_pipe(Napi::Env env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) throw_js(env, core::SysError(errno, "pipe2", ""));
  ::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);  // best effort: the default 64 KiB works too
  return {fds[0], fds[1]};
}

// What a job ends with: nothing (send), the received subvolumes, or an error of one of the core's kinds.
using Failure = std::variant<std::monostate, core::SysError, core::ReceiveSysError, core::StreamError, std::string>;

Napi::Value failure_to_js(Napi::Env env, const Failure& f) {
  if (auto* e = std::get_if<core::ReceiveSysError>(&f)) {
    Napi::Object err = make_error(env, *e).As<Napi::Object>();
    err.Set("command", Napi::Number::New(env, static_cast<double>(e->command)));
    err.Set("commandName", Napi::String::New(env, core::send_cmd_name(e->command_type)));
    return err;
  }
  if (auto* e = std::get_if<core::SysError>(&f)) return make_error(env, *e);
  if (auto* e = std::get_if<core::StreamError>(&f)) return make_stream_error(env, *e);
  return Napi::Error::New(env, "internal: " + std::get<std::string>(f)).Value();
}

// One job: its thread fills `result` or `failure`, then hands the job to
// the main thread, which settles the promise; the finalizer frees it. The
// thread-safe function also calls @callback when the thread asks (receive's
// drain); by default it is a no-op.
template <typename Result>
struct Job {
  Napi::Promise::Deferred deferred;
  Napi::ThreadSafeFunction tsfn;
  std::optional<Result> result;
  Failure failure;

  Job(Napi::Env env, const char* name, Napi::Function callback) : deferred(Napi::Promise::Deferred::New(env)) {
    tsfn = Napi::ThreadSafeFunction::New(env, callback, name, 0, 1, this, [](Napi::Env, Job* done) { delete done; });
  }
};

template <typename Result, typename Convert>
void settle(Napi::Env env, Job<Result>* job, Convert convert) {
  if (job->result) {
    job->deferred.Resolve(convert(env, *job->result));
  } else {
    job->deferred.Reject(failure_to_js(env, job->failure));
  }
}

template <typename Result, typename Work>
void run_catching(Job<Result>* job, Work work) {
  try {
    job->result.emplace(work());
  } catch (const core::ReceiveSysError& e) {
    job->failure = e;
  } catch (const core::SysError& e) {
    job->failure = e;
  } catch (const core::StreamError& e) {
    job->failure = e;
  } catch (const std::exception& e) {
    job->failure = std::string(e.what());
  }
}

// Runs @work for @job on a thread of its own; returns the job's promise.
template <typename Result, typename Work, typename Convert>
Napi::Promise run(Job<Result>* job, Work work, Convert convert) {
  Napi::Promise promise = job->deferred.Promise();
  std::thread([job, work = std::move(work), convert]() mutable {
    run_catching(job, work);
    Napi::ThreadSafeFunction tsfn = job->tsfn;
    tsfn.BlockingCall(job, [convert](Napi::Env env, Napi::Function, Job<Result>* j) { settle(env, j, convert); });
    tsfn.Release();  // the job is the finalizer's from here on
  }).detach();
  return promise;
}

Napi::Function no_op(Napi::Env env) {
  return Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
}

// The input of a receive as JS sees it: the queue the receiving thread
// reads, and the Buffers queued, referenced until the reader is done with
// them (only ever touched on the JS thread).
struct ReceiveInput {
  std::shared_ptr<core::QueueSource> queue;
  std::deque<Napi::Reference<Napi::Value>> held;
  uint64_t released = 0;  // chunks dropped from the front of `held`

  // Drops the Buffers the reader has copied (all of them once it is done).
  void release(bool all) {
    const uint64_t upto = all ? released + held.size() : queue->consumed();
    for (; released < upto && !held.empty(); released++) held.pop_front();
  }
};

std::vector<std::string> string_list(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsArray()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be an array");
  Napi::Array a = info[i].As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t k = 0; k < a.Length(); k++) {
    Napi::Value v = a.Get(k);
    if (!v.IsString()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must hold strings");
    out.push_back(v.As<Napi::String>().Utf8Value());
  }
  return out;
}

}  // namespace

Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string snapshot = path_arg(info, 0, "snapshot");
  std::optional<std::string> parent;
  if (info.Length() > 1 && !info[1].IsNull()) parent = path_arg(info, 1, "parent");
  std::vector<std::string> clones = string_list(info, 2, "cloneSources");
  if (info.Length() <= 3 || !info[3].IsNumber()) throw Napi::TypeError::New(env, "protocol must be a number");
  uint32_t protocol = info[3].As<Napi::Number>().Uint32Value();
  bool compressed = bool_arg(info, 4, "compressed");
  bool no_data = bool_arg(info, 5, "noData");
  // Not for compressed extents: send reads those from the disk, not through the page cache.
  bool read_ahead = bool_arg(info, 6, "readAhead") && !no_data && !compressed;
  Pipe pipe = make_pipe(env);
  auto prefetch = std::make_shared<core::SendPrefetch>();
  Napi::Promise done = run(
      new Job<bool>(env, "buttervolume:send", no_op(env)),
      [=]() {
        // Stopped (its last pages dropped) after the pipe is closed, before the job settles.
        struct Stopper {
          core::SendPrefetch& p;
          ~Stopper() { p.stop(); }
        } stopper{*prefetch};
        core::Fd out(pipe.write);  // closed when the ioctl returns: the reader then sees the end
        core::SendOptions options;
        options.snapshot = core::dir_open_entry(snapshot);
        options.snapshot_path = snapshot;
        uint64_t newer_than = 0;
        if (parent) {
          options.parent = core::dir_open_entry(*parent);
          options.parent_path = *parent;
          if (read_ahead) {
            uint64_t id = core::subvolume_id_fd(options.parent.get(), *parent);
            std::optional<core::RootItemInfo> item = core::root_item_of(options.parent.get(), id, *parent);
            newer_than = item ? std::max<uint64_t>(item->otransid, 1) : UINT64_MAX;  // unknown: read nothing ahead
          }
        }
        for (const std::string& c : clones) {
          options.clone_sources.push_back(core::dir_open_entry(c));
          options.clone_paths.push_back(c);
        }
        options.protocol = protocol;
        options.compressed = compressed;
        options.no_data = no_data;
        if (read_ahead && newer_than != UINT64_MAX) prefetch->start(core::Fd(::fcntl(options.snapshot.get(), F_DUPFD_CLOEXEC, 0)), newer_than);
        core::send_stream(options, out.get());
        return true;
      },
      [](Napi::Env e, bool&) -> Napi::Value { return e.Undefined(); });
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, pipe.read));
  out.Set("done", done);
  // The reader has taken this many bytes: the read-ahead may go that much further.
  out.Set("advance", Napi::Function::New(env, [prefetch](const Napi::CallbackInfo& i) {
    if (i.Length() > 0 && i[0].IsNumber()) prefetch->advance(static_cast<uint64_t>(std::max(0.0, i[0].As<Napi::Number>().DoubleValue())));
    return i.Env().Undefined();
  }));
  // Bytes asked for ahead of send so far (tests, benches).
  out.Set("prefetched", Napi::Function::New(env, [prefetch](const Napi::CallbackInfo& i) {
    return Napi::Number::New(i.Env(), static_cast<double>(prefetch->prefetched()));
  }));
  return out;
}

Napi::Value Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dest = path_arg(info, 0, "destDir");
  std::vector<std::string> allowed = string_list(info, 1, "allowedDirs");
  std::string prefix = path_arg(info, 2, "tempPrefix");
  bool force_decompress = bool_arg(info, 3, "forceDecompress");
  std::optional<std::string> expect_name;
  if (info.Length() > 4 && !info[4].IsNull()) {
    if (!info[4].IsString()) throw Napi::TypeError::New(env, "expectName must be a string or null");
    expect_name = info[4].As<Napi::String>().Utf8Value();
  }
  if (info.Length() <= 5 || !info[5].IsNumber()) throw Napi::TypeError::New(env, "reserveBytes must be a number");
  double reserve = info[5].As<Napi::Number>().DoubleValue();
  if (!(reserve >= 0 && reserve <= 9007199254740991.0)) throw Napi::TypeError::New(env, "reserveBytes must be >= 0");
  if (info.Length() <= 6 || !info[6].IsFunction()) throw Napi::TypeError::New(env, "onDrain must be a function");
  using List = std::vector<core::ReceivedSubvol>;
  auto* job = new Job<List>(env, "buttervolume:receive", info[6].As<Napi::Function>());
  auto input = std::make_shared<ReceiveInput>();
  // The drain runs on the receiving thread, before it releases the tsfn.
  input->queue = std::make_shared<core::QueueSource>(kInputQueueLimit, [tsfn = job->tsfn]() { tsfn.NonBlockingCall(); });
  std::shared_ptr<core::QueueSource> queue = input->queue;
  Napi::Promise done = run(
      job,
      [=]() {
        struct Closer {  // the reader is done with the queue whatever happens
          core::QueueSource& q;
          ~Closer() { q.close(); }
        } closer{*queue};
        core::ReceiveOptions options;
        options.dest = core::dir_open(dest);
        options.dest_path = dest;
        for (const std::string& a : allowed) options.allowed.push_back({core::dir_open(a), a});
        options.temp_prefix = prefix;
        options.force_decompress = force_decompress;
        options.expect_name = expect_name;
        options.reserve_bytes = static_cast<uint64_t>(reserve);
        return core::receive(*queue, options);
      },
      [](Napi::Env e, List& list) -> Napi::Value {
        Napi::Array out = Napi::Array::New(e, list.size());
        for (size_t i = 0; i < list.size(); i++) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("name", Napi::String::New(e, list[i].name));
          o.Set("uuid", uuid_to_js(e, list[i].uuid.data()));
          o.Set("receivedUuid", uuid_to_js(e, list[i].received_uuid.data()));
          o.Set("parentUuid", uuid_to_js(e, list[i].parent_uuid.data()));
          o.Set("ctransid", Napi::Number::New(e, static_cast<double>(list[i].ctransid)));
          o.Set("commands", Napi::Number::New(e, static_cast<double>(list[i].commands)));
          out.Set(static_cast<uint32_t>(i), o);
        }
        return out;
      });
  Napi::Object out = Napi::Object::New(env);
  out.Set("done", done);
  out.Set("push", Napi::Function::New(env, [input](const Napi::CallbackInfo& i) -> Napi::Value {
    if (i.Length() < 1 || !i[0].IsTypedArray() || i[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(i.Env(), "a receive's input must give Buffers or Uint8Arrays");
    }
    Napi::Uint8Array chunk = i[0].As<Napi::Uint8Array>();
    input->release(false);
    if (chunk.ByteLength() == 0) return Napi::Boolean::New(i.Env(), true);
    input->held.push_back(Napi::Persistent(i[0]));
    return Napi::Boolean::New(i.Env(), input->queue->push(chunk.Data(), chunk.ByteLength()));
  }));
  out.Set("end", Napi::Function::New(env, [input](const Napi::CallbackInfo& i) {
    input->queue->end();
    return i.Env().Undefined();
  }));
  out.Set("abort", Napi::Function::New(env, [input](const Napi::CallbackInfo& i) {
    input->queue->abort();
    return i.Env().Undefined();
  }));
  // After done has settled: the reader is gone, every Buffer can go. Before, only those it has copied.
  out.Set("release", Napi::Function::New(env, [input](const Napi::CallbackInfo& i) {
    input->release(input->queue->closed());
    return i.Env().Undefined();
  }));
  return out;
}

Napi::Value SendProtocolMax(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), core::send_protocol_max());
}

}  // namespace bv::napi
