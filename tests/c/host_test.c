/*
 * host_test.c — a C host of the tae-edu plugin, written only against include/tae_edu.h.
 *
 * Built by tests/c/run.sh with  gcc -std=c11 -Wall -Wextra -Wpedantic -Werror  and linked to the
 * built libtae_edu.so; run directly and under valgrind. It supplies a host table in C whose
 * `call` answers a few host methods from static JSON, and checks what the ABI guarantees:
 * the ABI version, configure describe and its JSON, errors for malformed requests (status and a
 * well-formed error JSON), null pointers, invalid UTF-8, oversized requests, wrong host tables,
 * re-entry from inside a callback, callbacks on the calling thread only, log lines reaching the
 * host, buffer freeing (host buffers and plugin buffers), session_end, shutdown twice, and the
 * lease methods (leases.acquire/renew/release and records.put fencing, in memory with the host's
 * own clock) exercised through execute.
 * Exit status 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include "tae_edu.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    checks++;                                                                             \
    if (!(cond)) {                                                                        \
      failures++;                                                                         \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                       \
      fputc('\n', stderr);                                                                \
    }                                                                                     \
  } while (0)

/* ---------------------------------------------------------------------------------------- */
/* A small JSON well-formedness checker (RFC 8259 grammar; no semantic checks).              */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
  const char *p;
  const char *end;
  int depth;
} JsonCursor;

static int json_value(JsonCursor *c);

static void json_ws(JsonCursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
    c->p++;
  }
}

static int json_lit(JsonCursor *c, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0) {
    return 0;
  }
  c->p += n;
  return 1;
}

static int json_string(JsonCursor *c) {
  if (c->p >= c->end || *c->p != '"') {
    return 0;
  }
  c->p++;
  while (c->p < c->end) {
    unsigned char ch = (unsigned char)*c->p++;
    if (ch == '"') {
      return 1;
    }
    if (ch < 0x20) {
      return 0;
    }
    if (ch == '\\') {
      if (c->p >= c->end) {
        return 0;
      }
      ch = (unsigned char)*c->p++;
      if (ch == 'u') {
        for (int i = 0; i < 4; i++) {
          if (c->p >= c->end || !strchr("0123456789abcdefABCDEF", *c->p)) {
            return 0;
          }
          c->p++;
        }
      } else if (!strchr("\"\\/bfnrt", ch)) {
        return 0;
      }
    }
  }
  return 0;
}

static int json_number(JsonCursor *c) {
  const char *start = c->p;
  if (c->p < c->end && *c->p == '-') {
    c->p++;
  }
  if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
    return 0;
  }
  if (*c->p == '0') {
    c->p++;
  } else {
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  if (c->p < c->end && *c->p == '.') {
    c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
    c->p++;
    if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
  }
  return c->p > start;
}

static int json_container(JsonCursor *c, char open, char close) {
  if (++c->depth > 128) {
    return 0;
  }
  c->p++; /* open */
  (void)open;
  json_ws(c);
  if (c->p < c->end && *c->p == close) {
    c->p++;
    c->depth--;
    return 1;
  }
  for (;;) {
    json_ws(c);
    if (close == '}') {
      if (!json_string(c)) return 0;
      json_ws(c);
      if (c->p >= c->end || *c->p != ':') return 0;
      c->p++;
    }
    if (!json_value(c)) return 0;
    json_ws(c);
    if (c->p >= c->end) return 0;
    if (*c->p == ',') {
      c->p++;
      continue;
    }
    if (*c->p == close) {
      c->p++;
      c->depth--;
      return 1;
    }
    return 0;
  }
}

static int json_value(JsonCursor *c) {
  json_ws(c);
  if (c->p >= c->end) return 0;
  switch (*c->p) {
    case '{': return json_container(c, '{', '}');
    case '[': return json_container(c, '[', ']');
    case '"': return json_string(c);
    case 't': return json_lit(c, "true");
    case 'f': return json_lit(c, "false");
    case 'n': return json_lit(c, "null");
    default: return json_number(c);
  }
}

/* 1 when buf[0..len) is exactly one JSON object (with optional surrounding whitespace). */
static int is_json_object(const uint8_t *buf, size_t len) {
  JsonCursor c = {(const char *)buf, (const char *)buf + len, 0};
  json_ws(&c);
  if (c.p >= c.end || *c.p != '{') return 0;
  if (!json_value(&c)) return 0;
  json_ws(&c);
  return c.p == c.end;
}

/* 1 when needle occurs in buf[0..len). */
static int contains(const uint8_t *buf, size_t len, const char *needle) {
  size_t n = strlen(needle);
  if (buf == NULL || n > len) return 0;
  for (size_t i = 0; i + n <= len; i++) {
    if (memcmp(buf + i, needle, n) == 0) return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* The C host                                                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
  pthread_t owner;            /* the thread that calls the exports */
  int calls;                  /* host method calls */
  int off_thread_callbacks;   /* callbacks seen on any other thread (must stay 0) */
  long live_host_buffers;     /* host buffers handed out and not yet freed (must end at 0) */
  int log_lines;
  int log_lines_with_secret;
  int log_reentry_attempts;
  int log_reentry_refused;    /* re-entries from inside `log` answered REENTRANT */
  int call_reentry_refused;   /* re-entries from inside `call` answered REENTRANT */
  int reenter_from_call;      /* when set, `call` tries to re-enter the plugin */
  int grant_permission;       /* user.has_permission answer */
  int fail_permission_call;   /* user.has_permission answers non-zero */
  char last_method[64];
  /* Leases (docs/abi.md, "Leases"), in memory, with the "database's" clock in `now`. */
  struct {
    int used;
    char ds[64], key[64], token[96], run_id[96], user[64], machine[128];
    long since, expires_at;
  } leases[8];
  long now;
  int acquires, renews, releases, record_puts, fenced_puts;
  char last_acquire[2048];
  int serve_contracts; /* contracts.get answers the asked keys as contracts */
} Host;

static const char *SECRET = "c-host-service-password-7d1e";

static int answer(uint8_t **out, size_t *out_len, Host *h, const char *text) {
  size_t n = strlen(text);
  uint8_t *buf = malloc(n);
  if (buf == NULL) return 1;
  memcpy(buf, text, n);
  *out = buf;
  *out_len = n;
  h->live_host_buffers++;
  return 0;
}

static int method_is(const uint8_t *method, size_t len, const char *name) {
  return strlen(name) == len && memcmp(method, name, len) == 0;
}


/* ---------------------------------------------------------------------------------------- */
/* Minimal JSON field extraction for the lease methods (the plugin's requests are compact). */
/* ---------------------------------------------------------------------------------------- */

/* Copies the string value of the first "key":"..." in [from, end) into out; answers the offset
   just after it, or 0 when absent. */
static size_t json_str(const uint8_t *buf, size_t from, size_t end, const char *key, char *out,
                       size_t out_size) {
  char needle[64];
  snprintf(needle, sizeof needle, "\"%s\":\"", key);
  size_t n = strlen(needle);
  for (size_t i = from; i + n <= end; i++) {
    if (memcmp(buf + i, needle, n) != 0) continue;
    size_t j = i + n, o = 0;
    while (j < end && buf[j] != '"') {
      if (buf[j] == '\\' && j + 1 < end) j++;
      if (o + 1 < out_size) out[o++] = (char)buf[j];
      j++;
    }
    out[o] = '\0';
    return j + 1;
  }
  return 0;
}

static long json_long(const uint8_t *buf, size_t len, const char *key) {
  char needle[64];
  snprintf(needle, sizeof needle, "\"%s\":", key);
  size_t n = strlen(needle);
  for (size_t i = 0; i + n < len; i++) {
    if (memcmp(buf + i, needle, n) == 0) {
      char digits[24] = {0};
      size_t k = 0;
      for (size_t j = i + n; j < len && k + 1 < sizeof digits && buf[j] >= '0' && buf[j] <= '9'; j++) {
        digits[k++] = (char)buf[j];
      }
      return strtol(digits, NULL, 10);
    }
  }
  return -1;
}

/* The [start, end) of the "contracts":[...] array, or 0 when absent. */
static int json_contracts(const uint8_t *buf, size_t len, size_t *start, size_t *end) {
  const char *needle = "\"contracts\":[";
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= len; i++) {
    if (memcmp(buf + i, needle, n) == 0) {
      *start = i + n;
      for (size_t j = *start; j < len; j++) {
        if (buf[j] == ']') {
          *end = j;
          return 1;
        }
      }
    }
  }
  return 0;
}

/* Calls f(h, ds, key, arg) for each {"data_server","key"} of the contracts array. */
typedef void (*ContractFn)(Host *h, const char *ds, const char *key, void *arg);
static void each_contract(Host *h, const uint8_t *buf, size_t start, size_t end, ContractFn f,
                          void *arg) {
  size_t i = start;
  while (i < end) {
    while (i < end && buf[i] != '{') i++;
    if (i >= end) break;
    size_t close = i;
    while (close < end && buf[close] != '}') close++;
    char ds[64] = "", key[64] = "";
    json_str(buf, i, close, "data_server", ds, sizeof ds);
    json_str(buf, i, close, "key", key, sizeof key);
    f(h, ds, key, arg);
    i = close + 1;
  }
}

static void rfc3339(long t, char *out, size_t size) {
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int lease_find(Host *h, const char *ds, const char *key) {
  for (int i = 0; i < (int)(sizeof h->leases / sizeof h->leases[0]); i++) {
    if (h->leases[i].used && strcmp(h->leases[i].ds, ds) == 0 && strcmp(h->leases[i].key, key) == 0) {
      return i;
    }
  }
  return -1;
}

static int lease_slot(Host *h, const char *ds, const char *key) {
  int i = lease_find(h, ds, key);
  if (i >= 0) return i;
  for (i = 0; i < (int)(sizeof h->leases / sizeof h->leases[0]); i++) {
    if (!h->leases[i].used) return i;
  }
  return -1;
}

/* Another run (another application server) holds a contract: set directly in the "database". */
static void lease_put(Host *h, const char *ds, const char *key, const char *run_id, const char *user,
                      const char *machine, long since, long expires_at) {
  int i = lease_slot(h, ds, key);
  if (i < 0) return;
  h->leases[i].used = 1;
  snprintf(h->leases[i].ds, sizeof h->leases[i].ds, "%s", ds);
  snprintf(h->leases[i].key, sizeof h->leases[i].key, "%s", key);
  snprintf(h->leases[i].token, sizeof h->leases[i].token, "%s", run_id);
  snprintf(h->leases[i].run_id, sizeof h->leases[i].run_id, "%s", run_id);
  snprintf(h->leases[i].user, sizeof h->leases[i].user, "%s", user);
  snprintf(h->leases[i].machine, sizeof h->leases[i].machine, "%s", machine);
  h->leases[i].since = since;
  h->leases[i].expires_at = expires_at;
}

typedef struct {
  char run_id[96], user[64], machine[128], session[96], option[32];
  long ttl;
  char granted[1024], held[2048], renewed[1024], lost[1024];
  const char *token;
  int only_listed;
} LeaseCall;

static void append(char *dst, size_t size, const char *text) {
  size_t used = strlen(dst);
  if (used + 1 < size) snprintf(dst + used, size - used, "%s%s", used > 0 ? "," : "", text);
}

static void acquire_one(Host *h, const char *ds, const char *key, void *arg) {
  LeaseCall *c = arg;
  char ref[192];
  snprintf(ref, sizeof ref, "{\"data_server\":\"%s\",\"key\":\"%s\"}", ds, key);
  int i = lease_find(h, ds, key);
  int live = i >= 0 && h->leases[i].expires_at > h->now;
  if (live && strcmp(h->leases[i].run_id, c->run_id) != 0) {
    char since[32], expires[32], held[768];
    rfc3339(h->leases[i].since, since, sizeof since);
    rfc3339(h->leases[i].expires_at, expires, sizeof expires);
    snprintf(held, sizeof held,
             "{\"data_server\":\"%s\",\"key\":\"%s\",\"holder\":{\"run_id\":\"%s\",\"session\":\"s\","
             "\"user\":\"%s\",\"machine\":\"%s\",\"option\":\"send\"},\"since\":\"%s\",\"expires_at\":\"%s\"}",
             ds, key, h->leases[i].run_id, h->leases[i].user, h->leases[i].machine, since, expires);
    append(c->held, sizeof c->held, held);
    return;
  }
  long since = live ? h->leases[i].since : h->now;
  lease_put(h, ds, key, c->run_id, c->user, c->machine, since, h->now + c->ttl);
  append(c->granted, sizeof c->granted, ref);
}

static void renew_one(Host *h, const char *ds, const char *key, void *arg) {
  LeaseCall *c = arg;
  char ref[192];
  snprintf(ref, sizeof ref, "{\"data_server\":\"%s\",\"key\":\"%s\"}", ds, key);
  int i = lease_find(h, ds, key);
  if (i >= 0 && strcmp(h->leases[i].token, c->token) == 0 && h->leases[i].expires_at > h->now) {
    h->leases[i].expires_at = h->now + c->ttl;
    append(c->renewed, sizeof c->renewed, ref);
  } else {
    append(c->lost, sizeof c->lost, ref);
  }
}

static void release_one(Host *h, const char *ds, const char *key, void *arg) {
  LeaseCall *c = arg;
  int i = lease_find(h, ds, key);
  if (i >= 0 && strcmp(h->leases[i].token, c->token) == 0) h->leases[i].used = 0;
}

/* records.put fencing: each record's (data_server, record_key) must be held by the token. */
static int fenced(Host *h, const uint8_t *req, size_t len, const char *token, char *lost, size_t size) {
  size_t at_ds = 0, at_key = 0;
  int refused = 0;
  for (;;) {
    char ds[64], key[64];
    size_t next_ds = json_str(req, at_ds, len, "data_server", ds, sizeof ds);
    size_t next_key = json_str(req, at_key, len, "record_key", key, sizeof key);
    if (next_ds == 0 || next_key == 0) break;
    at_ds = next_ds;
    at_key = next_key;
    int i = lease_find(h, ds, key);
    if (i < 0 || strcmp(h->leases[i].token, token) != 0 || h->leases[i].expires_at <= h->now) {
      char ref[192];
      snprintf(ref, sizeof ref, "{\"data_server\":\"%s\",\"key\":\"%s\"}", ds, key);
      append(lost, size, ref);
      refused = 1;
    }
  }
  return refused;
}

static int32_t lease_method(Host *h, const uint8_t *method, size_t method_len, const uint8_t *req,
                            size_t len, uint8_t **out, size_t *out_len, int *handled) {
  static char response[8192];
  LeaseCall c;
  memset(&c, 0, sizeof c);
  size_t start = 0, end = 0;
  int has_list = json_contracts(req, len, &start, &end);
  *handled = 1;
  if (method_is(method, method_len, "leases.acquire")) {
    h->acquires++;
    snprintf(h->last_acquire, sizeof h->last_acquire, "%.*s", (int)len, (const char *)req);
    json_str(req, 0, len, "run_id", c.run_id, sizeof c.run_id);
    json_str(req, 0, len, "user", c.user, sizeof c.user);
    json_str(req, 0, len, "machine", c.machine, sizeof c.machine);
    c.ttl = json_long(req, len, "ttl_secs");
    if (c.run_id[0] == '\0' || c.ttl < 1 || !has_list) {
      answer(out, out_len, h, "{\"message\":\"bad leases.acquire request\"}");
      return 1;
    }
    each_contract(h, req, start, end, acquire_one, &c);
    snprintf(response, sizeof response, "{\"token\":\"%s\",\"granted\":[%s],\"held\":[%s]}", c.run_id,
             c.granted, c.held);
    return answer(out, out_len, h, response);
  }
  char token[96] = "";
  json_str(req, 0, len, "token", token, sizeof token);
  c.token = token;
  if (method_is(method, method_len, "leases.renew")) {
    h->renews++;
    c.ttl = json_long(req, len, "ttl_secs");
    if (has_list) each_contract(h, req, start, end, renew_one, &c);
    snprintf(response, sizeof response, "{\"renewed\":[%s],\"lost\":[%s]}", c.renewed, c.lost);
    return answer(out, out_len, h, response);
  }
  if (method_is(method, method_len, "leases.release")) {
    h->releases++;
    if (has_list) {
      each_contract(h, req, start, end, release_one, &c);
    } else {
      for (int i = 0; i < (int)(sizeof h->leases / sizeof h->leases[0]); i++) {
        if (h->leases[i].used && strcmp(h->leases[i].token, token) == 0) h->leases[i].used = 0;
      }
    }
    return answer(out, out_len, h, "{}");
  }
  if (method_is(method, method_len, "records.put")) {
    h->record_puts++;
    char lease_token[96] = "";
    if (json_str(req, 0, len, "lease_token", lease_token, sizeof lease_token) != 0) {
      char lost[1024] = "";
      if (fenced(h, req, len, lease_token, lost, sizeof lost)) {
        h->fenced_puts++;
        snprintf(response, sizeof response,
                 "{\"message\":\"lease lost\",\"code\":\"lease_lost\",\"contracts\":[%s]}", lost);
        answer(out, out_len, h, response);
        return 1;
      }
    }
    return answer(out, out_len, h, "{}");
  }
  if (method_is(method, method_len, "records.get")) {
    return answer(out, out_len, h, "{\"records\":[]}");
  }
  *handled = 0;
  return 0;
}

static int32_t host_call(void *ctx, const uint8_t *method, size_t method_len,
                         const uint8_t *request, size_t request_len, uint8_t **out,
                         size_t *out_len) {
  Host *h = ctx;
  h->calls++;
  if (!pthread_equal(pthread_self(), h->owner)) h->off_thread_callbacks++;
  size_t n = method_len < sizeof h->last_method - 1 ? method_len : sizeof h->last_method - 1;
  memcpy(h->last_method, method, n);
  h->last_method[n] = '\0';
  if (!is_json_object(request, request_len)) {
    return answer(out, out_len, h, "{\"message\":\"request is not a JSON object\"}") == 0 ? 1 : 2;
  }
  if (h->reenter_from_call) {
    if (tae_edu_shutdown() == TAE_EDU_STATUS_REENTRANT) h->call_reentry_refused++;
  }
  if (method_is(method, method_len, "user.has_permission")) {
    if (h->fail_permission_call) {
      answer(out, out_len, h, "{\"message\":\"perfil indispon\\u00edvel\"}");
      return 3;
    }
    return answer(out, out_len, h, h->grant_permission ? "{\"granted\":true}" : "{\"granted\":false}");
  }
  if (method_is(method, method_len, "user.current")) {
    return answer(out, out_len, h,
                  "{\"login\":\"secretaria\",\"name\":\"Secretária Acadêmica\","
                  "\"email\":\"secretaria@example.com\",\"interactive\":false}");
  }
  if (method_is(method, method_len, "params.get")) {
    static char params[512];
    snprintf(params, sizeof params,
             "{\"values\":{\"auth_url\":\"http://127.0.0.1:9/identityintegration\","
             "\"api_url\":\"http://127.0.0.1:9\",\"service_user\":\"svc@example.com\","
             "\"service_password\":\"%s\",\"request_timeout_secs\":1}}",
             SECRET);
    return answer(out, out_len, h, params);
  }
  if (method_is(method, method_len, "contracts.get")) {
    if (h->serve_contracts) {
      /* Each asked key as a contract of EduContratoData. */
      static char contracts[4096];
      char key[64];
      contracts[0] = '\0';
      const char *keys = "\"keys\":[";
      size_t at = 0, n = strlen(keys);
      while (at + n <= request_len && memcmp(request + at, keys, n) != 0) at++;
      at += n;
      while (at < request_len && request[at] == '"') {
        size_t k = 0;
        at++;
        while (at < request_len && request[at] != '"' && k + 1 < sizeof key) key[k++] = (char)request[at++];
        key[k] = '\0';
        at++; /* closing quote */
        if (at < request_len && request[at] == ',') at++;
        char one[512];
        snprintf(one, sizeof one,
                 "{\"key\":\"%s\",\"data_server\":\"EduContratoData\",\"codcoligada\":1,"
                 "\"codfilial\":1,\"codcontrato\":\"%s\",\"ra\":\"2026001\",\"student_name\":\"Jo\u00e3o\","
                 "\"course\":\"Enfermagem\",\"period\":\"2026/1\",\"status\":\"Ativo\","
                 "\"financial_responsible\":null}",
                 key, key);
        append(contracts, sizeof contracts, one);
      }
      static char body[4200];
      snprintf(body, sizeof body, "{\"contracts\":[%s],\"missing\":[]}", contracts);
      return answer(out, out_len, h, body);
    }
    return answer(out, out_len, h, "{\"contracts\":[],\"missing\":[\"1;2026001;145\"]}");
  }
  {
    int handled = 0;
    int32_t status = lease_method(h, method, method_len, request, request_len, out, out_len, &handled);
    if (handled) return status;
  }
  answer(out, out_len, h, "{\"message\":\"unknown method\"}");
  return 1;
}

static void host_free_buffer(void *ctx, uint8_t *buf, size_t len) {
  Host *h = ctx;
  (void)len;
  if (!pthread_equal(pthread_self(), h->owner)) h->off_thread_callbacks++;
  if (buf != NULL) h->live_host_buffers--;
  free(buf);
}

static void host_log(void *ctx, int32_t level, const uint8_t *msg, size_t msg_len) {
  Host *h = ctx;
  if (!pthread_equal(pthread_self(), h->owner)) h->off_thread_callbacks++;
  h->log_lines++;
  if (contains(msg, msg_len, SECRET)) h->log_lines_with_secret++;
  if (level < 1 || level > 5) h->log_lines_with_secret += 1000; /* impossible level */
  /* Every log line tries to re-enter the plugin; each attempt must be refused. */
  h->log_reentry_attempts++;
  if (tae_edu_session_end((const uint8_t *)"x", 1) == TAE_EDU_STATUS_REENTRANT) {
    h->log_reentry_refused++;
  }
  if (getenv("HOST_TEST_VERBOSE")) {
    fprintf(stderr, "  [plugin log %d] %.*s\n", (int)level, (int)msg_len, (const char *)msg);
  }
}

static int32_t host_progress(void *ctx, uint32_t done, uint32_t total, const uint8_t *detail,
                             size_t detail_len) {
  Host *h = ctx;
  (void)done;
  (void)total;
  (void)detail;
  (void)detail_len;
  if (!pthread_equal(pthread_self(), h->owner)) h->off_thread_callbacks++;
  return 0;
}

static TaeEduHost make_table(Host *h) {
  TaeEduHost t;
  memset(&t, 0, sizeof t);
  t.abi_version = TAE_EDU_ABI_VERSION;
  t.struct_size = (uint32_t)sizeof(TaeEduHost);
  t.ctx = h;
  t.call = host_call;
  t.free_buffer = host_free_buffer;
  t.log = host_log;
  t.progress = host_progress;
  return t;
}

typedef int32_t (*JsonExport)(const TaeEduHost *, const uint8_t *, size_t, uint8_t **, size_t *);

typedef struct {
  int32_t status;
  uint8_t *buf;
  size_t len;
} Response;

static Response request(JsonExport export_fn, const TaeEduHost *table, const char *json) {
  Response r = {0, (uint8_t *)"sentinel", 12345};
  r.status = export_fn(table, (const uint8_t *)json, strlen(json), &r.buf, &r.len);
  return r;
}

/* Checks the common shape of an error response: status, well-formed JSON, ok:false, code. */
static void expect_error(const char *what, Response r, int32_t status, const char *code) {
  char needle[96];
  CHECK(r.status == status, "%s: status %d, expected %d", what, (int)r.status, (int)status);
  CHECK(r.buf != NULL && r.len > 0, "%s: an error response is always written", what);
  CHECK(is_json_object(r.buf, r.len), "%s: the error response is not a JSON object: %.*s", what,
        (int)r.len, (const char *)r.buf);
  CHECK(contains(r.buf, r.len, "\"ok\":false"), "%s: missing ok:false", what);
  snprintf(needle, sizeof needle, "\"code\":\"%s\"", code);
  CHECK(contains(r.buf, r.len, needle), "%s: missing %s in %.*s", what, needle, (int)r.len,
        (const char *)r.buf);
  snprintf(needle, sizeof needle, "\"status\":%d", (int)status);
  CHECK(contains(r.buf, r.len, needle), "%s: missing %s", what, needle);
  CHECK(contains(r.buf, r.len, "\"message\":\""), "%s: missing the user message", what);
  tae_edu_buffer_free(r.buf, r.len);
}

int main(void) {
  /* Debug level: every export logs on the calling thread, which exercises `log` (and the
     re-entry attempts made from inside it). Read once, when the plugin installs its logger. */
  setenv("TAE_EDU_LOG", "debug", 1);

  Host h;
  memset(&h, 0, sizeof h);
  h.owner = pthread_self();
  h.grant_permission = 0;
  TaeEduHost table = make_table(&h);

  /* 1. ABI version. */
  CHECK(tae_edu_abi_version() == TAE_EDU_ABI_VERSION, "abi version %u", tae_edu_abi_version());
  CHECK(TAE_EDU_ABI_VERSION == 1, "header ABI version %d", TAE_EDU_ABI_VERSION);
  /* The host table as C lays it out from the header: the offsets plugin/tests/ffi_header.rs
     asserts for the Rust struct (8 bytes of versions, then five pointers). */
  CHECK(offsetof(TaeEduHost, abi_version) == 0 && offsetof(TaeEduHost, struct_size) == 4 &&
            offsetof(TaeEduHost, ctx) == 8 && offsetof(TaeEduHost, call) == 8 + sizeof(void *) &&
            offsetof(TaeEduHost, free_buffer) == 8 + 2 * sizeof(void *) &&
            offsetof(TaeEduHost, log) == 8 + 3 * sizeof(void *) &&
            offsetof(TaeEduHost, progress) == 8 + 4 * sizeof(void *) &&
            sizeof(TaeEduHost) == 8 + 5 * sizeof(void *),
        "TaeEduHost layout (size %zu)", sizeof(TaeEduHost));

  /* 2. configure describe: status 0 and the fields of the global parameters tab. */
  Response r = request(tae_edu_configure, &table, "{\"action\":\"describe\"}");
  CHECK(r.status == TAE_EDU_STATUS_OK, "describe status %d: %.*s", (int)r.status, (int)r.len,
        (const char *)r.buf);
  CHECK(r.buf != NULL && is_json_object(r.buf, r.len), "describe answers a JSON object");
  CHECK(contains(r.buf, r.len, "\"ok\":true"), "describe ok:true");
  CHECK(contains(r.buf, r.len, "\"fields\":["), "describe lists fields");
  CHECK(contains(r.buf, r.len, "\"name\":\"auth_url\""), "describe has auth_url");
  CHECK(contains(r.buf, r.len, "\"name\":\"api_url\""), "describe has api_url");
  CHECK(contains(r.buf, r.len, "\"name\":\"service_password\""), "describe has service_password");
  CHECK(contains(r.buf, r.len, "\"type\":\"password\""), "service_password is a password field");
  tae_edu_buffer_free(r.buf, r.len);
  CHECK(h.log_lines > 0, "the plugin's log lines reach the host (got %d)", h.log_lines);

  /* 3. Malformed requests: not JSON, not an object, unknown action, unknown field. */
  expect_error("not JSON", request(tae_edu_configure, &table, "{\"action\": "), 3, "INVALID_REQUEST");
  expect_error("not an object", request(tae_edu_configure, &table, "[1,2]"), 3, "INVALID_REQUEST");
  expect_error("unknown action", request(tae_edu_configure, &table, "{\"action\":\"explode\"}"), 3,
               "INVALID_REQUEST");
  expect_error("unknown field", request(tae_edu_configure, &table, "{\"action\":\"describe\",\"x\":1}"),
               3, "INVALID_REQUEST");
  expect_error("execute garbage", request(tae_edu_execute, &table, "{\"option\":42}"), 3,
               "INVALID_REQUEST");
  expect_error("attachment_list garbage", request(tae_edu_attachment_list, &table, "nope"), 3,
               "INVALID_REQUEST");

  /* 4. Invalid UTF-8. */
  {
    const uint8_t bad[] = {'{', '"', 'a', '"', ':', '"', 0xC3, 0x28, '"', '}'};
    Response e = {0, NULL, 0};
    e.status = tae_edu_configure(&table, bad, sizeof bad, &e.buf, &e.len);
    expect_error("invalid UTF-8", e, 2, "INVALID_UTF8");
  }

  /* 5. Null pointers. */
  {
    Response e = {0, NULL, 0};
    e.status = tae_edu_configure(&table, NULL, 10, &e.buf, &e.len);
    expect_error("NULL request", e, 1, "NULL_ARGUMENT");
    e.status = tae_edu_execute(NULL, (const uint8_t *)"{}", 2, &e.buf, &e.len);
    expect_error("NULL host", e, 1, "NULL_ARGUMENT");
    /* NULL out / out_len: refused with NULL_ARGUMENT before anything runs (not one host
       callback, so no batch whose results nobody could read); the other, non-NULL out pointer
       is still cleared to NULL/0. */
    const char *describe = "{\"action\":\"describe\"}";
    const char *execute =
        "{\"session\":\"rm-session-1\",\"invoked_from\":{\"kind\":\"contract_view\","
        "\"contract_keys\":[\"1;2026001;145\"]},\"option\":\"check\",\"params\":{}}";
    int calls_before = h.calls;
    int logs_before = h.log_lines;
    CHECK(tae_edu_configure(&table, (const uint8_t *)describe, strlen(describe), NULL, NULL) ==
              TAE_EDU_STATUS_NULL_ARGUMENT,
          "describe without out/out_len");
    size_t len = 77;
    CHECK(tae_edu_execute(&table, (const uint8_t *)execute, strlen(execute), NULL, &len) ==
              TAE_EDU_STATUS_NULL_ARGUMENT,
          "execute without out");
    CHECK(len == 0, "out_len is set to 0 first (got %zu)", len);
    uint8_t *buf = (uint8_t *)"sentinel";
    CHECK(tae_edu_attachment_list(&table, (const uint8_t *)"{\"page\":1,\"page_size\":5}", 24, &buf,
                                  NULL) == TAE_EDU_STATUS_NULL_ARGUMENT,
          "attachment_list without out_len");
    CHECK(buf == NULL, "out is set to NULL first");
    len = 5;
    CHECK(tae_edu_configure(&table, (const uint8_t *)"{", 1, NULL, &len) ==
              TAE_EDU_STATUS_NULL_ARGUMENT,
          "a malformed request without out is refused for the NULL out first");
    CHECK(len == 0, "out_len cleared (got %zu)", len);
    CHECK(h.calls == calls_before, "a call without out/out_len called the host %d time(s)",
          h.calls - calls_before);
    CHECK(h.log_lines == logs_before, "a call without out/out_len logged %d line(s)",
          h.log_lines - logs_before);
    CHECK(tae_edu_session_end(NULL, 3) == TAE_EDU_STATUS_NULL_ARGUMENT, "session_end(NULL)");
  }

  /* 6. Oversized request: refused before reading it (the bytes past 1 are never touched). */
  {
    Response e = {0, NULL, 0};
    e.status = tae_edu_configure(&table, (const uint8_t *)"{", (size_t)TAE_EDU_MAX_REQUEST_BYTES + 1,
                                 &e.buf, &e.len);
    expect_error("request too large", e, 13, "REQUEST_TOO_LARGE");
  }

  /* 7. Wrong host tables. */
  {
    TaeEduHost bad = make_table(&h);
    bad.abi_version = 2;
    expect_error("abi_version 2", request(tae_edu_configure, &bad, "{\"action\":\"describe\"}"), 4,
                 "INVALID_HOST_TABLE");
    bad = make_table(&h);
    bad.struct_size = (uint32_t)sizeof(TaeEduHost) - 1;
    expect_error("struct_size too small",
                 request(tae_edu_configure, &bad, "{\"action\":\"describe\"}"), 4,
                 "INVALID_HOST_TABLE");
    bad = make_table(&h);
    bad.call = NULL;
    expect_error("NULL call", request(tae_edu_execute, &bad, "{}"), 4, "INVALID_HOST_TABLE");
    bad = make_table(&h);
    bad.free_buffer = NULL;
    expect_error("NULL free_buffer", request(tae_edu_execute, &bad, "{}"), 4, "INVALID_HOST_TABLE");

    /* A newer host's larger table is accepted; log and progress are optional. */
    struct {
      TaeEduHost base;
      uint64_t appended_field;
    } newer;
    newer.base = make_table(&h);
    newer.base.struct_size = (uint32_t)sizeof newer;
    newer.base.log = NULL;
    newer.base.progress = NULL;
    newer.appended_field = 0;
    Response ok = request(tae_edu_configure, &newer.base, "{\"action\":\"describe\"}");
    CHECK(ok.status == 0, "a larger struct_size without log/progress is accepted (%d)", (int)ok.status);
    tae_edu_buffer_free(ok.buf, ok.len);
  }

  /* 8. execute: host callbacks on the calling thread, a refused permission, a failing host
        method, and re-entry from inside `call`. */
  {
    const char *check =
        "{\"session\":\"rm-session-1\",\"invoked_from\":{\"kind\":\"contract_view\","
        "\"contract_keys\":[\"1;2026001;145\"]},\"option\":\"check\",\"params\":{}}";
    int calls_before = h.calls;
    h.reenter_from_call = 1;
    expect_error("permission refused", request(tae_edu_execute, &table, check), 10,
                 "PERMISSION_DENIED");
    h.reenter_from_call = 0;
    CHECK(h.calls > calls_before, "execute called the host");
    CHECK(strcmp(h.last_method, "user.has_permission") == 0, "last method %s", h.last_method);
    CHECK(h.call_reentry_refused > 0, "re-entry from inside call refused (%d)", h.call_reentry_refused);

    h.fail_permission_call = 1;
    Response e = request(tae_edu_execute, &table, check);
    CHECK(contains(e.buf, e.len, "perfil indispon"), "the host's failure message is reported: %.*s",
          (int)e.len, (const char *)e.buf);
    expect_error("host method failed", e, 7, "HOST_ERROR");
    h.fail_permission_call = 0;
  }

  /* 9. configure validate of values carrying a service password: well-formed JSON, status 0
        (normalised values) or 12 (per-field errors); the password never comes back. */
  {
    Response t = request(tae_edu_configure, &table,
                         "{\"action\":\"validate\",\"values\":"
                         "{\"auth_url\":\"https://totvssign.totvs.app/identityintegration\","
                         "\"api_url\":\"https://totvssign.totvs.app\","
                         "\"service_user\":\"svc@example.com\","
                         "\"service_password\":\"c-host-service-password-7d1e\"}}");
    CHECK(t.buf != NULL && is_json_object(t.buf, t.len), "validate answers JSON");
    CHECK(t.status == 0 || t.status == 12, "validate status %d: %.*s", (int)t.status, (int)t.len,
          (const char *)t.buf);
    CHECK(!contains(t.buf, t.len, SECRET), "the service password came back in the response");
    if (getenv("HOST_TEST_VERBOSE")) {
      fprintf(stderr, "  [validate] %.*s\n", (int)t.len, (const char *)t.buf);
    }
    tae_edu_buffer_free(t.buf, t.len);
  }

  /* 10. Buffers: NULL is a no-op; every host buffer was freed by the plugin. */
  tae_edu_buffer_free(NULL, 0);
  tae_edu_buffer_free(NULL, 42);
  CHECK(h.live_host_buffers == 0, "host buffers not freed: %ld", h.live_host_buffers);

  /* 11. session_end. */
  CHECK(tae_edu_session_end((const uint8_t *)"rm-session-1", 12) == 0, "session_end");
  CHECK(tae_edu_session_end((const uint8_t *)"unknown", 7) == 0, "session_end of an unknown id");
  {
    const uint8_t bad[] = {0xFF, 0xFE};
    CHECK(tae_edu_session_end(bad, sizeof bad) == TAE_EDU_STATUS_INVALID_UTF8, "session_end UTF-8");
  }

  /* 12. Leases (docs/abi.md, "Leases"), served by this host in memory with its own clock, through
        execute: a contract another application server holds is not touched and its holder is
        reported; once that lease expired, the next run takes the contract over. */
  {
    const char *ds = "EduContratoData", *key = "1;2026001;145";
    const char *check =
        "{\"session\":\"rm-session-1\",\"invoked_from\":{\"kind\":\"contract_view\","
        "\"contract_keys\":[\"1;2026001;145\"]},\"option\":\"check\",\"params\":{}}";
    h.grant_permission = 1;
    h.serve_contracts = 1;
    h.now = 1796205600; /* 2026-12-02T10:00:00Z by the "database" clock */
    lease_put(&h, ds, key, "run-outro-servidor", "tesouraria", "rm-app-2", h.now - 120, h.now + 300);
    int acquires = h.acquires, puts = h.record_puts;
    Response e = request(tae_edu_execute, &table, check);
    CHECK(h.acquires == acquires + 1, "execute asked leases.acquire once (%d)", h.acquires - acquires);
    CHECK(contains((const uint8_t *)h.last_acquire, strlen(h.last_acquire),
                   "{\"data_server\":\"EduContratoData\",\"key\":\"1;2026001;145\"}"),
          "leases.acquire asked for the contract: %s", h.last_acquire);
    CHECK(contains((const uint8_t *)h.last_acquire, strlen(h.last_acquire), "\"user\":\"secretaria\"") &&
              !contains((const uint8_t *)h.last_acquire, strlen(h.last_acquire), "\"machine\":\"\"") &&
              json_long((const uint8_t *)h.last_acquire, strlen(h.last_acquire), "ttl_secs") >= 1,
          "leases.acquire names the owner (user, machine) and a ttl: %s", h.last_acquire);
    int i = lease_find(&h, ds, key);
    CHECK(i >= 0 && strcmp(h.leases[i].run_id, "run-outro-servidor") == 0 &&
              h.leases[i].expires_at == h.now + 300,
          "the other server's lease is untouched");
    CHECK(h.record_puts == puts, "no record written for a contract another run holds");
    /* The per-contract `held` outcome: status 0, the contract answered `held`, naming the
       holder (the user and the machine of the other run). */
    CHECK(e.status == TAE_EDU_STATUS_OK, "a held contract does not stop the call: status %d: %.*s",
          (int)e.status, (int)e.len, (const char *)e.buf);
    CHECK(contains(e.buf, e.len, "\"outcome\":\"held\"") && contains(e.buf, e.len, "tesouraria") &&
              contains(e.buf, e.len, "rm-app-2"),
          "the contract is answered held, naming who holds it: %.*s", (int)e.len, (const char *)e.buf);
    tae_edu_buffer_free(e.buf, e.len);

    /* The other server crashed: its lease expires by the database clock and the next run takes
       the contract over (TAE is unreachable here, so that run itself then fails). */
    h.now += 301;
    int releases = h.releases;
    Response t = request(tae_edu_execute, &table, check);
    char machine[256] = "";
    gethostname(machine, sizeof machine - 1);
    i = lease_find(&h, ds, key);
    CHECK(h.acquires == acquires + 2, "the rerun asked leases.acquire");
    CHECK(contains((const uint8_t *)h.last_acquire, strlen(h.last_acquire), machine),
          "the owner's machine is this machine's host name (%s): %s", machine, h.last_acquire);
    CHECK(i < 0 || strcmp(h.leases[i].run_id, "run-outro-servidor") != 0,
          "the expired lease was taken over by the rerun");
    /* A run gives its leases back when it ends (here: when login failed). */
    CHECK(h.releases > releases && lease_find(&h, ds, key) < 0,
          "the run released its lease when it ended (%d release calls)", h.releases - releases);
    if (getenv("HOST_TEST_VERBOSE")) {
      fprintf(stderr, "  [lease rerun %d] %.*s\n", (int)t.status, (int)t.len, (const char *)t.buf);
    }
    tae_edu_buffer_free(t.buf, t.len);

    /* This host's records.put fencing, the reference behaviour of docs/abi.md: a write carrying a
       lease token is refused as a whole when the token does not hold every record's contract. */
    lease_put(&h, ds, "fenced-1", "run-a", "secretaria", "rm-app-1", h.now, h.now + 60);
    lease_put(&h, ds, "fenced-2", "run-b", "secretaria", "rm-app-3", h.now, h.now + 60);
    const char *put =
        "{\"lease_token\":\"run-a\",\"records\":[{\"id\":\"r-1\",\"data_server\":\"EduContratoData\","
        "\"record_key\":\"fenced-1\",\"events\":[]},{\"id\":\"r-2\",\"data_server\":\"EduContratoData\","
        "\"record_key\":\"fenced-2\",\"events\":[]}]}";
    uint8_t *buf = NULL;
    size_t len = 0;
    int32_t status = host_call(&h, (const uint8_t *)"records.put", 11, (const uint8_t *)put, strlen(put),
                               &buf, &len);
    CHECK(status != 0 && contains(buf, len, "\"code\":\"lease_lost\"") &&
              contains(buf, len, "\"key\":\"fenced-2\"") && !contains(buf, len, "fenced-1"),
          "records.put fenced on the lost contract only: %d %.*s", (int)status, (int)len, (const char *)buf);
    host_free_buffer(&h, buf, len);
    const char *put_own =
        "{\"lease_token\":\"run-a\",\"records\":[{\"id\":\"r-1\",\"data_server\":\"EduContratoData\","
        "\"record_key\":\"fenced-1\",\"events\":[]}]}";
    status = host_call(&h, (const uint8_t *)"records.put", 11, (const uint8_t *)put_own, strlen(put_own),
                       &buf, &len);
    CHECK(status == 0, "records.put of a contract the token holds is accepted: %.*s", (int)len,
          (const char *)buf);
    host_free_buffer(&h, buf, len);
    h.now += 61;
    status = host_call(&h, (const uint8_t *)"records.put", 11, (const uint8_t *)put_own, strlen(put_own),
                       &buf, &len);
    CHECK(status != 0, "records.put after the lease expired is refused");
    host_free_buffer(&h, buf, len);
    h.serve_contracts = 0;
    h.grant_permission = 0;
  }

  /* 12b. reconcile (docs/abi.md, "reconcile"): this host has no TAE, so the request is checked at
         the boundary: a well-formed one reaches the host (here the permission, refused), a bad
         one is refused with 3 before any host call, naming the parameter. */
  {
#define RECONCILE(params)                                                                        \
  "{\"session\":\"rm-session-1\",\"invoked_from\":{\"kind\":\"menu\",\"filter\":{\"period\":\"2026/1\"}}," \
  "\"option\":\"reconcile\",\"params\":" params "}"
    const char *accepted[] = {
        RECONCILE("{}"),
        RECONCILE("{\"fix\":false}"),
        RECONCILE("{\"fix\":true,\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\"}}"),
        RECONCILE("{\"period\":{\"from\":\"2026-11-01T00:00:00Z\",\"to\":\"2026-11-30T23:59:59Z\"}}"),
    };
    for (size_t k = 0; k < sizeof accepted / sizeof accepted[0]; k++) {
      int calls_before = h.calls;
      Response e = request(tae_edu_execute, &table, accepted[k]);
      CHECK(h.calls > calls_before && strcmp(h.last_method, "user.has_permission") == 0,
            "reconcile request %zu reached the host (last method %s)", k, h.last_method);
      expect_error("reconcile accepted, permission refused", e, 10, "PERMISSION_DENIED");
    }
    struct {
      const char *json, *names;
    } refused[] = {
        {RECONCILE("{\"fix\":true,\"dry_run\":true}"), "dry_run"},
        {RECONCILE("{\"fix\":\"sim\"}"), "invalid type"},
        {RECONCILE("{\"period\":{\"from\":\"31/10/2026\",\"to\":\"2026-11-30\"}}"), "period.from"},
        {RECONCILE("{\"period\":{\"from\":\"2026-11-01\",\"to\":\"ontem\"}}"), "period.to"},
        {RECONCILE("{\"period\":{\"from\":\"2026-12-01\",\"to\":\"2026-11-30\"}}"), "period"},
        {RECONCILE("{\"period\":{\"from\":\"2026-11-01\"}}"), "to"},
        {RECONCILE("{\"period\":{\"from\":\"2026-11-01\",\"to\":\"2026-11-30\",\"x\":1}}"), "x"},
    };
    for (size_t k = 0; k < sizeof refused / sizeof refused[0]; k++) {
      int calls_before = h.calls;
      Response e = request(tae_edu_execute, &table, refused[k].json);
      CHECK(h.calls == calls_before, "bad reconcile request %zu called the host", k);
      CHECK(e.buf != NULL && contains(e.buf, e.len, refused[k].names),
            "bad reconcile request %zu names %s: %.*s", k, refused[k].names, (int)e.len,
            (const char *)e.buf);
      expect_error("reconcile refused", e, 3, "INVALID_REQUEST");
    }
#undef RECONCILE
  }

  /* 13. shutdown twice, then the state is recreated by the next call. */
  CHECK(tae_edu_shutdown() == 0, "first shutdown");
  CHECK(tae_edu_shutdown() == 0, "second shutdown");
  r = request(tae_edu_configure, &table, "{\"action\":\"describe\"}");
  CHECK(r.status == 0, "describe after shutdown: %d", (int)r.status);
  tae_edu_buffer_free(r.buf, r.len);
  CHECK(tae_edu_shutdown() == 0, "final shutdown");

  /* Threading and logging invariants over the whole run. */
  CHECK(h.off_thread_callbacks == 0, "%d callbacks ran on another thread", h.off_thread_callbacks);
  CHECK(h.log_lines_with_secret == 0, "%d log lines carried a secret or a bad level",
        h.log_lines_with_secret);
  CHECK(h.log_reentry_attempts > 0 && h.log_reentry_refused == h.log_reentry_attempts,
        "re-entry from inside log: %d of %d refused", h.log_reentry_refused, h.log_reentry_attempts);
  CHECK(h.live_host_buffers == 0, "host buffers not freed at the end: %ld", h.live_host_buffers);

  printf("host_test: %d checks, %d failures (%d host calls, %d log lines)\n", checks, failures,
         h.calls, h.log_lines);
  return failures == 0 ? 0 : 1;
}
