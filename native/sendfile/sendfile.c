/*
 * sendfile.node: sends a byte range of a file to a connected socket with sendfile(2), for
 * sluice's TCP bulk replay. Linux only; src/replay/sendfile.ts falls back to read + write.
 *
 *   start(socketFd, fileFd, position, length, done) -> transfer
 *   abort(transfer) -> true if it was still running
 *   done(errno, bytesSent, parks, burstNsMax): exactly once, later, from Node's loop.
 *     errno 0 with bytesSent < length: the file ended first. parks: waits for the peer
 *     to read (EAGAIN). burstNsMax: the longest time one burst held the loop.
 *
 * - The socket fd is dup()ed (F_DUPFD_CLOEXEC) and only the dup is used: if the JS socket
 *   is destroyed mid-transfer and its fd number reused by another file, our bytes still go
 *   to the original connection (the dup keeps it open), never to the newcomer.
 * - O_NONBLOCK belongs to the open file description, shared with Node's fd, which libuv
 *   already made non-blocking. We set it anyway and never clear it.
 * - Bursts run on Node's loop thread: each call on a non-blocking socket is bounded by the
 *   socket buffer's free space, and a burst stops after BURST_BYTES_MAX so that a fast
 *   reader cannot hold the loop (measured on loopback: <= ~2 ms of CPU per 4 MiB burst;
 *   1 MiB bursts cost ~45% more CPU per GiB). On EAGAIN the transfer parks on a uv_poll_t
 *   on Node's own loop, level-triggered, so a burst cut short resumes next iteration.
 *   Nothing waits in the thread pool: four slow readers parked there starved all fs calls.
 *   A range that is not in the page cache makes a burst wait for the disk.
 * - One exit: completion, error, end of file and abort all go through finish(), which
 *   uv_close()s the poll handle once; on_closed() closes the dup and calls done. So done
 *   never runs inside start() or abort(), and the dup outlives libuv's polling of it.
 * - abort() shuts the dup down (SHUT_RDWR) before the close: the connection ends, since a
 *   partly sent range leaves the byte stream unusable anyway.
 * - Memory: a transfer is owned by the uv handle and by the JS external, one reference
 *   each; the last release frees it. An env cleanup hook closes a running transfer when
 *   its environment (a worker) goes away, without calling into JS. Node unloads a worker's
 *   addons before libuv runs the last close callbacks, so the addon makes itself
 *   RTLD_NODELETE: on_closed() must still be there (without it: SIGSEGV).
 * - SIGPIPE: sendfile(2) has no MSG_NOSIGNAL; Node ignores SIGPIPE, so a gone peer gives
 *   EPIPE or ECONNRESET.
 */
#define _GNU_SOURCE
#ifndef __linux__
#error "sendfile.node is Linux only; sluice falls back to read + write elsewhere"
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define CALL_BYTES_MAX (1 << 20)  /* one sendfile(2) call */
#define BURST_BYTES_MAX (4 << 20) /* one loop iteration, then back to the loop */

typedef struct transfer {
  napi_env env;
  uv_poll_t poll;
  napi_ref done;
  napi_async_context context;
  int sock;          /* our dup of the socket fd; -1 when there is none */
  int file;
  off_t position;
  int64_t remaining;
  int64_t sent;
  int64_t parks;
  int64_t burst_ns_max;
  int error;         /* errno of the first failure, 0 if none */
  int finishing;     /* finish() ran: no more bursts, and the dup is closed or closing */
  int teardown;      /* the environment is going away: never call into JS again */
  int refs;          /* the uv handle + the JS external */
} transfer;

static const napi_type_tag TRANSFER_TAG = {0x736c756963652d73ULL, 0x656e6466696c6521ULL};

static void release(transfer* t) {
  if (--t->refs == 0) free(t);
}

static void drop_js(transfer* t) {
  napi_delete_reference(t->env, t->done);
  napi_async_destroy(t->env, t->context);
}

static void on_teardown(void* arg);

static void on_closed(uv_handle_t* handle) {
  transfer* t = handle->data;
  close(t->sock);
  t->sock = -1;
  if (!t->teardown) {
    napi_remove_env_cleanup_hook(t->env, on_teardown, t);
    napi_handle_scope scope;
    napi_value done, recv, argv[4];
    napi_open_handle_scope(t->env, &scope);
    napi_get_reference_value(t->env, t->done, &done);
    napi_get_global(t->env, &recv); /* make_callback wants an object */
    napi_create_int32(t->env, t->error, &argv[0]);
    napi_create_double(t->env, (double)t->sent, &argv[1]);
    napi_create_double(t->env, (double)t->parks, &argv[2]);
    napi_create_double(t->env, (double)t->burst_ns_max, &argv[3]);
    /* make_callback, not call_function: it runs the microtasks the callback queues. */
    napi_make_callback(t->env, t->context, recv, done, 4, argv, NULL);
    napi_close_handle_scope(t->env, scope);
    drop_js(t);
  }
  release(t);
}

static void finish(transfer* t, int error) {
  if (t->finishing) return;
  t->finishing = 1;
  if (t->error == 0) t->error = error;
  uv_close((uv_handle_t*)&t->poll, on_closed);
}

static void on_teardown(void* arg) {
  transfer* t = arg;
  t->teardown = 1;
  drop_js(t);
  finish(t, ECANCELED);
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One burst: sendfile(2) until the socket is full, the range is sent or the budget is spent.
   Returns the errno that ends the transfer, 0 when it ended cleanly, -1 to keep polling. */
static int burst(transfer* t) {
  int64_t budget = BURST_BYTES_MAX;
  while (t->remaining > 0 && budget > 0) {
    int64_t count = t->remaining < budget ? t->remaining : budget;
    if (count > CALL_BYTES_MAX) count = CALL_BYTES_MAX;
    ssize_t n = sendfile(t->sock, t->file, &t->position, (size_t)count);
    if (n > 0) {
      t->sent += n;
      t->remaining -= n;
      budget -= n;
    } else if (n == 0) {
      return 0; /* end of file before end of range: bytesSent tells how far */
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      t->parks++;
      return -1; /* the poll fires again once the peer has read */
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return t->remaining == 0 ? 0 : -1; /* budget spent: level-triggered, runs next iteration */
}

static void on_writable(uv_poll_t* poll, int status, int events) {
  transfer* t = poll->data;
  if (t->finishing) return;
  if (status < 0) {
    finish(t, -status); /* libuv errors are negated errnos on Unix */
    return;
  }
  int64_t started = now_ns();
  int result = burst(t);
  int64_t took = now_ns() - started;
  if (took > t->burst_ns_max) t->burst_ns_max = took;
  if (result >= 0) finish(t, result);
}

static napi_value throw_errno(napi_env env, int error, const char* what) {
  char message[160];
  napi_value text, err, number;
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &err);
  napi_create_int32(env, error, &number);
  napi_set_named_property(env, err, "errno", number);
  napi_throw(env, err);
  return NULL;
}

static void on_finalize(napi_env env, void* data, void* hint) {
  release(data);
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_valuetype done_type = napi_undefined;
  int32_t sock_fd = -1, file_fd = -1;
  int64_t position = -1, length = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      napi_get_value_int32(env, argv[0], &sock_fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &file_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &position) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_typeof(env, argv[4], &done_type) != napi_ok || done_type != napi_function ||
      sock_fd < 0 || file_fd < 0 || position < 0 || length < 0) {
    napi_throw_type_error(env, NULL,
                          "start(socketFd, fileFd, position, length, done): bad arguments");
    return NULL;
  }

  transfer* t = calloc(1, sizeof *t);
  napi_value external, name;
  uv_loop_t* loop;
  if (t == NULL) return throw_errno(env, ENOMEM, "start");
  t->env = env;
  t->sock = -1;
  t->file = file_fd;
  t->position = (off_t)position;
  t->remaining = length;
  t->finishing = 1; /* until the poll handle exists: abort() must not touch anything */
  t->refs = 1;      /* the external, made first so that every later failure is the same */
  if (napi_create_external(env, t, on_finalize, NULL, &external) != napi_ok) {
    free(t);
    return NULL;
  }
  napi_type_tag_object(env, external, &TRANSFER_TAG);
  napi_create_string_utf8(env, "sluice.sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[4], 1, &t->done) != napi_ok) return NULL;
  if (napi_async_init(env, NULL, name, &t->context) != napi_ok) {
    napi_delete_reference(env, t->done);
    return NULL;
  }

  int error = 0, flags;
  const char* what = "dup";
  t->sock = fcntl(sock_fd, F_DUPFD_CLOEXEC, 0);
  if (t->sock < 0) {
    error = errno;
  } else if ((flags = fcntl(t->sock, F_GETFL)) < 0 ||
             fcntl(t->sock, F_SETFL, flags | O_NONBLOCK) < 0) {
    error = errno, what = "fcntl";
  } else if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    error = EINVAL, what = "uv loop";
  } else if ((error = -uv_poll_init_socket(loop, &t->poll, t->sock)) != 0) {
    what = "uv_poll_init";
  }
  if (error != 0) {
    if (t->sock >= 0) close(t->sock);
    t->sock = -1;
    drop_js(t);
    return throw_errno(env, error, what);
  }

  t->poll.data = t;
  t->refs++; /* the handle's; released in on_closed */
  t->finishing = 0;
  napi_add_env_cleanup_hook(env, on_teardown, t);
  error = -uv_poll_start(&t->poll, UV_WRITABLE, on_writable);
  if (error != 0) finish(t, error); /* reported through done, like any other failure */
  return external;
}

static napi_value abort_transfer(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, result;
  bool tagged = false;
  void* data = NULL;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok || argc < 1 ||
      napi_check_object_type_tag(env, arg, &TRANSFER_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, arg, &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "abort(transfer): not a transfer");
    return NULL;
  }
  transfer* t = data;
  bool running = !t->finishing;
  if (running) {
    shutdown(t->sock, SHUT_RDWR);
    finish(t, ECANCELED);
  }
  napi_get_boolean(env, running, &result);
  return result;
}

NAPI_MODULE_INIT() {
  Dl_info self;
  if (dladdr((void*)on_closed, &self) != 0 && self.dli_fname != NULL) {
    dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); /* see "Memory" */
  }
  napi_property_descriptor properties[] = {
      {"start", NULL, start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"abort", NULL, abort_transfer, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, 2, properties);
  return exports;
}
