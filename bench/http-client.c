/*
 * The client side of bench/plugin's Snapshot + Snapshot.Remove cycles, as
 * light as a client can be: one keep-alive HTTP/1.1 connection on the plugin
 * socket, each request in one write (as Go's net/http, dockerd's client,
 * sends a small request), no runtime in between. Then every row served over
 * HTTP pays the same small client cost and the rest is the server's.
 * Fails on any status other than 200 or a non-empty "Err".
 * usage: http-client SOCKET VOLUME CYCLES   (prints elapsed seconds)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static char in[65536];

/* The string value of "key" in the flat JSON object @json (no escapes in it), or NULL. */
static char *string_field(char *json, const char *key, char **end) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  char *p = strstr(json, quoted);
  if (!p) return NULL;
  p += strlen(quoted);
  while (*p == ' ' || *p == ':') p++;
  if (*p != '"') return NULL;
  *end = strchr(p + 1, '"');
  return *end ? p + 1 : NULL;
}
static size_t have;

/* Sends one POST and copies the answer's body into @out; exits on any failure. */
static void call(int fd, const char *path, const char *body, char *out, size_t outsz) {
  char req[1024];
  int n = snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: plugin\r\nContent-Length: %zu\r\n\r\n%s", path,
                   strlen(body), body);
  if (n <= 0 || (size_t)n >= sizeof req || write(fd, req, n) != n) {
    perror("write");
    exit(1);
  }
  for (;;) {
    char *end = memmem(in, have, "\r\n\r\n", 4);
    if (end) {
      size_t head = end - in + 4;
      char *cl = memmem(in, head, "Content-Length:", 15);
      if (!cl) cl = memmem(in, head, "content-length:", 15);
      if (!cl) {
        fprintf(stderr, "%s: no Content-Length in the answer\n", path);
        exit(1);
      }
      size_t len = strtoul(cl + 15, NULL, 10);
      if (len >= outsz) {
        fprintf(stderr, "%s: answer too large\n", path);
        exit(1);
      }
      if (have >= head + len) {
        if (strncmp(in, "HTTP/1.1 200 ", 13) != 0) {
          fprintf(stderr, "%s: %.*s\n", path, (int)(have < 80 ? have : 80), in);
          exit(1);
        }
        memcpy(out, in + head, len);
        out[len] = '\0';
        memmove(in, in + head + len, have - head - len);
        have -= head + len;
        char *err_end;
        char *err = string_field(out, "Err", &err_end);
        if (!err || err != err_end) {
          fprintf(stderr, "%s: %s\n", path, out);
          exit(1);
        }
        return;
      }
    }
    if (have == sizeof in) {
      fprintf(stderr, "%s: answer too large\n", path);
      exit(1);
    }
    ssize_t r = read(fd, in + have, sizeof in - have);
    if (r <= 0) {
      fprintf(stderr, "%s: connection closed\n", path);
      exit(1);
    }
    have += r;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s SOCKET VOLUME CYCLES\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("connect");
    return 1;
  }
  long cycles = atol(argv[3]);
  char body[600], out[4096];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < cycles; i++) {
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}\n", argv[2]);
    call(fd, "/VolumeDriver.Snapshot", body, out, sizeof out);
    char *quote;
    char *snap = string_field(out, "Snapshot", &quote);
    if (!snap) {
      fprintf(stderr, "no Snapshot in the answer: %s\n", out);
      return 1;
    }
    *quote = '\0';
    snprintf(body, sizeof body, "{\"Name\":\"%s\"}\n", snap);
    call(fd, "/VolumeDriver.Snapshot.Remove", body, out, sizeof out);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  close(fd);
  return 0;
}
