#include "net/pull.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define MAX_DISCARD_BODY  (1u << 20) /* bytes read from a redirect or error body */
#define DEFAULT_MAX_BYTES (UINT64_C(1) << 40)

/* ---- small parsers (no network) ---- */

static bool parse_u64(const char *s, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static uint64_t env_u64(const char *name, uint64_t def) {
    const char *s = getenv(name);
    uint64_t v;
    if (s && parse_u64(s, strlen(s), &v) && v > 0) return v;
    return def;
}

int pull_parse_content_range(const char *v, uint64_t *start, uint64_t *end, uint64_t *total) {
    while (*v == ' ' || *v == '\t') v++;
    if (strncasecmp(v, "bytes", 5) != 0) return -1;
    v += 5;
    if (*v != ' ' && *v != '\t') return -1;
    while (*v == ' ' || *v == '\t') v++;
    const char *slash = strchr(v, '/');
    if (!slash) return -1;
    const char *t = slash + 1;
    size_t tlen = strcspn(t, " \t\r\n");
    if (t[tlen] != 0 && strspn(t + tlen, " \t\r\n") != strlen(t + tlen)) return -1;
    uint64_t tot;
    if (tlen == 1 && t[0] == '*')
        tot = PULL_SIZE_UNKNOWN;
    else if (!parse_u64(t, tlen, &tot))
        return -1;
    if (slash - v == 1 && v[0] == '*') {
        if (tot == PULL_SIZE_UNKNOWN) return -1;
        *start = *end = PULL_SIZE_UNKNOWN;
        *total = tot;
        return 1;
    }
    const char *dash = memchr(v, '-', (size_t)(slash - v));
    uint64_t a, b;
    if (!dash || !parse_u64(v, (size_t)(dash - v), &a) ||
        !parse_u64(dash + 1, (size_t)(slash - dash - 1), &b))
        return -1;
    if (b < a || (tot != PULL_SIZE_UNKNOWN && b >= tot)) return -1;
    *start = a;
    *end = b;
    *total = tot;
    return 0;
}

bool pull_hex_digest(const char *v, char out[SHA256_HEX_SIZE]) {
    while (*v == ' ' || *v == '\t') v++;
    if (v[0] == 'W' && v[1] == '/') v += 2;
    size_t len = strlen(v);
    while (len && strchr(" \t\r\n", v[len - 1])) len--;
    if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
        v++;
        len -= 2;
    }
    if (len != 64) return false;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)v[i])) return false;
        out[i] = (char)tolower((unsigned char)v[i]);
    }
    out[64] = 0;
    return true;
}

/* Scheme, host and port of a URL (lowercased scheme and host). */
typedef struct url_parts {
    char scheme[16];
    char host[256];
    long port;
} url_parts;

static int url_split(const char *url, url_parts *p) {
    CURLU *u = curl_url();
    if (!u) return -1;
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        strlen(scheme) < sizeof p->scheme && strlen(host) < sizeof p->host) {
        for (size_t i = 0; scheme[i]; i++) p->scheme[i] = (char)tolower((unsigned char)scheme[i]);
        p->scheme[strlen(scheme)] = 0;
        for (size_t i = 0; host[i]; i++) p->host[i] = (char)tolower((unsigned char)host[i]);
        p->host[strlen(host)] = 0;
        p->port = strtol(port, NULL, 10);
        rc = 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

bool pull_same_origin(const char *a, const char *b) {
    url_parts pa, pb;
    if (url_split(a, &pa) != 0 || url_split(b, &pb) != 0) return false;
    return !strcmp(pa.scheme, pb.scheme) && !strcmp(pa.host, pb.host) && pa.port == pb.port;
}

int pull_redirect_check(const char *from, const char *to, hearth_err *err) {
    url_parts pf, pt;
    if (url_split(from, &pf) != 0) return hearth_errf(err, "cannot parse URL '%s'", from);
    if (url_split(to, &pt) != 0)
        return hearth_errf(err, "redirect from %s to an unparseable location '%s'", from, to);
    if (strcmp(pt.scheme, "http") != 0 && strcmp(pt.scheme, "https") != 0)
        return hearth_errf(err,
                           "refusing redirect from %s to '%s': expected http or https, found %s",
                           from, to, pt.scheme);
    if (!strcmp(pf.scheme, "https") && !strcmp(pt.scheme, "http"))
        return hearth_errf(err, "refusing redirect from https to plain http (%s -> %s)", from, to);
    return 0;
}

/* Appends s to out[*len], percent-encoding bytes outside [A-Za-z0-9._~-] (and
 * '/' unless keep_slash). */
static bool append_encoded(char *out, size_t cap, size_t *len, const char *s, bool keep_slash) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain =
            isalnum(c) || c == '.' || c == '_' || c == '~' || c == '-' || (keep_slash && c == '/');
        size_t need = plain ? 1 : 3;
        if (*len + need >= cap) return false;
        if (plain) {
            out[(*len)++] = (char)c;
        } else {
            out[(*len)++] = '%';
            out[(*len)++] = hex[c >> 4];
            out[(*len)++] = hex[c & 15];
        }
    }
    out[*len] = 0;
    return true;
}

static int parse_hf(const char *spec, const char *endpoint, pull_source *out, hearth_err *err) {
    const char *p = spec + 5; /* after hf:// */
    char buf[PULL_URL_MAX];
    if (strlen(p) >= sizeof buf) return hearth_errf(err, "source '%.64s...' is too long", spec);
    strcpy(buf, p);
    const char *rev = "main";
    char *at = strrchr(buf, '@');
    if (at) {
        *at = 0;
        rev = at + 1;
        if (!*rev) return hearth_errf(err, "source '%s': empty revision after '@'", spec);
    }
    /* ORG/REPO/PATH...: at least three non-empty segments, none "." or "..". */
    int n_seg = 0;
    for (char *s = buf;; n_seg++) {
        char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
            return hearth_errf(err,
                               "source '%s': expected hf://ORG/REPO/FILE.gguf[@REVISION], found "
                               "an empty, '.' or '..' path segment",
                               spec);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '?' || s[i] == '#')
                return hearth_errf(err, "source '%s': unexpected character in the path", spec);
        if (!slash) break;
        s = slash + 1;
    }
    if (n_seg + 1 < 3)
        return hearth_errf(err,
                           "source '%s': expected hf://ORG/REPO/FILE.gguf[@REVISION], found %d "
                           "path segment%s",
                           spec, n_seg + 1, n_seg ? "s" : "");
    const char *org = buf;
    char *s1 = strchr(buf, '/');
    *s1 = 0;
    char *repo = s1 + 1;
    char *s2 = strchr(repo, '/');
    *s2 = 0;
    const char *file = s2 + 1;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (!store_name_ok(base))
        return hearth_errf(err, "source '%s': '%s' is not usable as a file name", spec, base);
    snprintf(out->name, sizeof out->name, "%s", base);

    size_t elen = strlen(endpoint);
    while (elen && endpoint[elen - 1] == '/') elen--;
    if (elen == 0 || elen >= sizeof out->url)
        return hearth_errf(err, "hub endpoint '%s' is empty or too long", endpoint);
    memcpy(out->url, endpoint, elen);
    size_t len = elen;
    out->url[len] = 0;
    bool ok = append_encoded(out->url, sizeof out->url, &len, "/", true) &&
              append_encoded(out->url, sizeof out->url, &len, org, false) &&
              append_encoded(out->url, sizeof out->url, &len, "/", true) &&
              append_encoded(out->url, sizeof out->url, &len, repo, false) &&
              append_encoded(out->url, sizeof out->url, &len, "/resolve/", true) &&
              append_encoded(out->url, sizeof out->url, &len, rev, false) &&
              append_encoded(out->url, sizeof out->url, &len, "/", true) &&
              append_encoded(out->url, sizeof out->url, &len, file, true);
    if (!ok) return hearth_errf(err, "source '%s': URL too long", spec);
    url_parts up;
    if (url_split(out->url, &up) != 0 || (strcmp(up.scheme, "http") && strcmp(up.scheme, "https")))
        return hearth_errf(err, "hub endpoint '%.*s': expected an http(s) URL", (int)elen,
                           endpoint);
    memcpy(out->hub_endpoint, endpoint, elen);
    out->hub_endpoint[elen] = 0;
    out->hub = true;
    return 0;
}

int pull_parse_source(const char *spec, const char *hf_endpoint, pull_source *out,
                      hearth_err *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !*spec) return hearth_errf(err, "expected a source (hf://... or a URL), found ''");
    if (!strncmp(spec, "hf://", 5)) {
        if (!hf_endpoint) hf_endpoint = getenv("HEARTH_HF_ENDPOINT");
        if (!hf_endpoint || !*hf_endpoint) hf_endpoint = PULL_DEFAULT_HF;
        return parse_hf(spec, hf_endpoint, out, err);
    }
    if (strncasecmp(spec, "http://", 7) != 0 && strncasecmp(spec, "https://", 8) != 0)
        return hearth_errf(
            err, "source '%s': expected hf://ORG/REPO/FILE.gguf or an http(s):// URL", spec);
    if (strlen(spec) >= sizeof out->url) return hearth_errf(err, "URL too long: '%.64s...'", spec);
    CURLU *u = curl_url();
    if (!u) return hearth_errf(err, "out of memory");
    char *path = NULL;
    int rc = 0;
    if (curl_url_set(u, CURLUPART_URL, spec, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK) {
        rc = hearth_errf(err, "source '%s': not a valid URL", spec);
    } else {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (!*base || !store_name_ok(base))
            rc = hearth_errf(err,
                             "source '%s': cannot take a file name from the URL path (found "
                             "'%s'); pass --name NAME",
                             spec, base);
        else
            snprintf(out->name, sizeof out->name, "%s", base);
    }
    curl_free(path);
    curl_url_cleanup(u);
    if (rc) return rc;
    strcpy(out->url, spec);
    return 0;
}

/* ---- the transfer ---- */

typedef struct xfer {
    hearth_err *err;
    bool failed; /* err holds the reason; curl's own message is secondary */
    int fd;
    const char *partial;
    const char *dir; /* the store, for the free-space check */
    FILE *log;

    /* The current response. */
    long status;
    char reason[64];
    bool headers_done;
    uint64_t content_length; /* PULL_SIZE_UNKNOWN when absent */
    char content_range[128];
    bool has_content_range;
    uint64_t discarded; /* body bytes of a redirect or error response */
    char snippet[160];  /* start of an error body */
    size_t snippet_len;

    /* Across the redirect chain. */
    char linked_hash[SHA256_HEX_SIZE]; /* first X-Linked-ETag that is a SHA-256 */
    char etag_hash[SHA256_HEX_SIZE];   /* first ETag that is a SHA-256 */
    uint64_t linked_size;              /* X-Linked-Size, PULL_SIZE_UNKNOWN when absent */

    /* The body being written. */
    bool writing;
    bool complete_already; /* 416 with the partial file already the whole size */
    bool restart;          /* the server answered in a way that needs a fresh start */
    uint64_t have;         /* bytes in the partial file */
    uint64_t session_start;
    uint64_t total; /* expected final size, PULL_SIZE_UNKNOWN when not announced */
    uint64_t limit; /* abort when have would pass it */
    uint64_t max_bytes;
    sha256_ctx sha;

    /* Progress. */
    pull_progress progress;
    double t_start, t_last;
    double interval;
    bool drew_tty;
} xfer;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fmt_bytes(char *out, size_t cap, double b) {
    const char *unit[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) {
        b /= 1000;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, unit[i]);
}

static void draw_progress(xfer *x, bool final) {
    if (x->progress == PULL_PROGRESS_NONE || !x->log || !x->writing) return;
    double t = now_s();
    double min_gap = x->progress == PULL_PROGRESS_TTY ? 0.25 : x->interval;
    if (!final && t - x->t_last < min_gap) return;
    x->t_last = t;
    double dt = t - x->t_start;
    double rate = dt > 0 ? (double)(x->have - x->session_start) / dt : 0;
    char got[32], tot[32], eta[32] = "";
    fmt_bytes(got, sizeof got, (double)x->have);
    char line[160];
    if (x->total != PULL_SIZE_UNKNOWN && x->total > 0) {
        fmt_bytes(tot, sizeof tot, (double)x->total);
        double pct = 100.0 * (double)x->have / (double)x->total;
        if (rate > 0 && x->have < x->total) {
            double s = (double)(x->total - x->have) / rate;
            if (s < 360000)
                snprintf(eta, sizeof eta, "  ETA %d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60,
                         (int)s % 60);
        }
        snprintf(line, sizeof line, "%s / %s  %5.1f%%  %.2f MB/s%s", got, tot, pct, rate / 1e6,
                 eta);
    } else {
        snprintf(line, sizeof line, "%s  %.2f MB/s", got, rate / 1e6);
    }
    if (x->progress == PULL_PROGRESS_TTY) {
        fprintf(x->log, "\r  %-70s", line);
        x->drew_tty = true;
        if (final) {
            fputc('\n', x->log);
            x->drew_tty = false;
        }
    } else {
        fprintf(x->log, "  %s\n", line);
    }
    fflush(x->log);
}

/* Ends an in-place progress line before other output. */
static void progress_break(xfer *x) {
    if (x->drew_tty && x->log) {
        fputc('\n', x->log);
        x->drew_tty = false;
    }
}

static int xfer_fail(xfer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int xfer_fail(xfer *x, const char *fmt, ...) {
    if (x->failed) return -1; /* keep the first reason */
    x->failed = true;
    if (x->err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->err->msg, sizeof x->err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int reset_partial(xfer *x) {
    if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0)
        return xfer_fail(x, "cannot truncate '%s': %s", x->partial, strerror(errno));
    x->have = 0;
    x->session_start = 0;
    sha256_init(&x->sha);
    return 0;
}

/* Called at the end of a 200/206 response's headers: decides whether the
 * body continues the partial file, replaces it, or is refused. */
static int begin_body(xfer *x) {
    uint64_t total = PULL_SIZE_UNKNOWN;
    if (x->status == 206) {
        uint64_t a, b, t;
        if (!x->has_content_range)
            return xfer_fail(x, "server answered 206 Partial Content without a Content-Range");
        if (pull_parse_content_range(x->content_range, &a, &b, &t) != 0)
            return xfer_fail(x, "server answered 206 with a malformed Content-Range '%s'",
                             x->content_range);
        if (a != x->have) {
            /* Not the bytes asked for: start over without Range. */
            if (x->log)
                fprintf(x->log,
                        "hearth: server sent bytes from %" PRIu64 ", expected %" PRIu64
                        "; starting over\n",
                        a, x->have);
            x->restart = true;
            return -1;
        }
        if (x->content_length != PULL_SIZE_UNKNOWN && x->content_length != b - a + 1)
            return xfer_fail(
                x, "Content-Range '%s' announces %" PRIu64 " bytes but Content-Length is %" PRIu64,
                x->content_range, b - a + 1, x->content_length);
        total = t;
    } else { /* 200: the whole file from the start */
        if (x->have > 0) {
            if (x->log)
                fprintf(x->log,
                        "hearth: server ignored the range request; restarting from zero (%" PRIu64
                        " bytes discarded)\n",
                        x->have);
            if (reset_partial(x) != 0) return -1;
        }
        total = x->content_length;
    }
    if (x->linked_size != PULL_SIZE_UNKNOWN) {
        if (total == PULL_SIZE_UNKNOWN)
            total = x->linked_size;
        else if (total != x->linked_size)
            return xfer_fail(x,
                             "size mismatch: the hub announced %" PRIu64
                             " bytes (X-Linked-Size), the server sends %" PRIu64,
                             x->linked_size, total);
    }
    if (total != PULL_SIZE_UNKNOWN && total > x->max_bytes)
        return xfer_fail(x,
                         "file too large: %" PRIu64 " bytes announced, limit is %" PRIu64
                         " (HEARTH_PULL_MAX_BYTES)",
                         total, x->max_bytes);
    if (total != PULL_SIZE_UNKNOWN && total > x->have && x->dir) {
        struct statvfs vs;
        if (statvfs(x->dir, &vs) == 0 && vs.f_frsize > 0) {
            uint64_t avail = (uint64_t)vs.f_bavail;
            uint64_t need = total - x->have;
            if (avail < need / vs.f_frsize)
                return xfer_fail(x,
                                 "not enough disk space in %s: need %" PRIu64
                                 " more bytes, %" PRIu64 " available",
                                 x->dir, need, avail * (uint64_t)vs.f_frsize);
        }
    }
    x->total = total;
    x->limit = total != PULL_SIZE_UNKNOWN ? total : x->max_bytes;
    x->writing = true;
    x->t_start = x->t_last = now_s();
    return 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen) {
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0) return false;
    const char *v = line + n + 1;
    const char *e = line + len;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && strchr(" \t\r\n", e[-1])) e--;
    *value = v;
    *vlen = (size_t)(e - v);
    return true;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
    xfer *x = ud;
    size_t len = size * nitems;
    if (len >= 5 && !strncmp(buf, "HTTP/", 5)) { /* status line: a new response */
        x->status = 0;
        x->reason[0] = 0;
        x->headers_done = false;
        x->content_length = PULL_SIZE_UNKNOWN;
        x->has_content_range = false;
        x->discarded = 0;
        x->snippet_len = 0;
        const char *sp = memchr(buf, ' ', len);
        if (sp) {
            const char *code = sp + 1;
            size_t rest = len - (size_t)(code - buf);
            uint64_t st;
            if (rest >= 3 && parse_u64(code, 3, &st)) x->status = (long)st;
            if (rest > 4) {
                size_t rl = rest - 4;
                while (rl && strchr(" \t\r\n", code[4 + rl - 1])) rl--;
                if (rl >= sizeof x->reason) rl = sizeof x->reason - 1;
                memcpy(x->reason, code + 4, rl);
                x->reason[rl] = 0;
            }
        }
        return len;
    }
    if (len <= 2 && (len == 0 || buf[0] == '\r' || buf[0] == '\n')) { /* end of headers */
        if (x->status >= 100 && x->status < 200) return len;          /* interim response */
        x->headers_done = true;
        if (x->status == 200 || x->status == 206)
            if (begin_body(x) != 0) return 0; /* aborts the transfer */
        return len;
    }
    const char *v;
    size_t vl;
    char tmp[256];
    if (header_is(buf, len, "Content-Length", &v, &vl)) {
        uint64_t n;
        if (!parse_u64(v, vl, &n)) {
            xfer_fail(x, "malformed Content-Length '%.*s'", (int)(vl < 64 ? vl : 64), v);
            return 0;
        }
        x->content_length = n;
    } else if (header_is(buf, len, "Content-Range", &v, &vl)) {
        snprintf(x->content_range, sizeof x->content_range, "%.*s", (int)vl, v);
        x->has_content_range = true;
    } else if (header_is(buf, len, "X-Linked-Size", &v, &vl)) {
        uint64_t n;
        if (x->linked_size == PULL_SIZE_UNKNOWN && parse_u64(v, vl, &n)) x->linked_size = n;
    } else if (header_is(buf, len, "X-Linked-ETag", &v, &vl)) {
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < 200 ? vl : 200), v);
        if (!x->linked_hash[0]) pull_hex_digest(tmp, x->linked_hash);
    } else if (header_is(buf, len, "ETag", &v, &vl)) {
        snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < 200 ? vl : 200), v);
        if (!x->etag_hash[0]) pull_hex_digest(tmp, x->etag_hash);
    }
    return len;
}

static size_t on_body(char *buf, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t len = size * nmemb;
    if (!x->writing) { /* a redirect or error body: keep a little, bounded */
        if (x->discarded + len > MAX_DISCARD_BODY) return 0;
        x->discarded += len;
        for (size_t i = 0; i < len && x->snippet_len + 1 < sizeof x->snippet; i++) {
            unsigned char c = (unsigned char)buf[i];
            x->snippet[x->snippet_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
        }
        while (x->snippet_len && x->snippet[x->snippet_len - 1] == ' ') x->snippet_len--;
        x->snippet[x->snippet_len] = 0;
        return len;
    }
    if (len > x->limit - x->have) {
        if (x->total != PULL_SIZE_UNKNOWN)
            xfer_fail(x,
                      "server sent more than the announced %" PRIu64
                      " bytes; transfer aborted (body longer than its size)",
                      x->total);
        else
            xfer_fail(x,
                      "server sent more than %" PRIu64
                      " bytes without announcing a size; transfer aborted "
                      "(raise HEARTH_PULL_MAX_BYTES for larger files)",
                      x->max_bytes);
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            xfer_fail(x, "cannot write '%s' after %" PRIu64 " bytes: %s", x->partial, x->have,
                      w < 0 ? strerror(errno) : "no progress");
            return 0;
        }
        off += (size_t)w;
    }
    sha256_update(&x->sha, buf, len);
    x->have += len;
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    draw_progress(ud, false);
    return 0;
}

/* Hashes the bytes already in the partial file (resume). */
static int hash_existing(xfer *x, hearth_err *err) {
    struct stat st;
    if (fstat(x->fd, &st) != 0)
        return hearth_errf(err, "cannot stat '%s': %s", x->partial, strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (lseek(x->fd, 0, SEEK_SET) != 0)
        return hearth_errf(err, "cannot seek '%s': %s", x->partial, strerror(errno));
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) return hearth_errf(err, "out of memory hashing '%s'", x->partial);
    uint64_t done = 0;
    while (done < size) {
        ssize_t r = read(x->fd, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(buf);
            return hearth_errf(err, "cannot read '%s' at %" PRIu64 " of %" PRIu64 " bytes: %s",
                               x->partial, done, size, r < 0 ? strerror(errno) : "end of file");
        }
        sha256_update(&x->sha, buf, (size_t)r);
        done += (uint64_t)r;
    }
    free(buf);
    x->have = done;
    if (lseek(x->fd, (off_t)done, SEEK_SET) < 0)
        return hearth_errf(err, "cannot seek '%s': %s", x->partial, strerror(errno));
    return 0;
}

/* One request; fills x. Returns 0 when curl finished without our abort. */
static CURLcode request(CURL *h, xfer *x, const char *url, const pull_source *src,
                        const char *token, char *curl_msg) {
    struct curl_slist *hdr = NULL;
    char line[PULL_URL_MAX];
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (x->have > 0) {
        snprintf(line, sizeof line, "Range: bytes=%" PRIu64 "-", x->have);
        if (!(hdr = curl_slist_append(hdr, line))) goto out;
    }
    /* The token only to the hub itself, never to the host a redirect names. */
    if (token && src->hub && pull_same_origin(url, src->hub_endpoint)) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", token);
        struct curl_slist *n = curl_slist_append(hdr, line);
        if (!n) goto out;
        hdr = n;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    x->status = 0;
    x->headers_done = false;
    x->writing = false;
    curl_msg[0] = 0;
    rc = curl_easy_perform(h);
out:
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdr);
    return rc;
}

static void keep_note(xfer *x) {
    progress_break(x);
    if (x->log && x->have > 0)
        fprintf(x->log, "hearth: kept %" PRIu64 " bytes in %s; run the same command to resume\n",
                x->have, x->partial);
}

/* The download proper, into x->fd. 0 when the body is complete. */
static int download(xfer *x, const pull_source *src, hearth_err *err) {
    CURL *h = curl_easy_init();
    if (!h) return hearth_errf(err, "cannot initialise libcurl");
    char curl_msg[CURL_ERROR_SIZE];
    long connect_timeout = (long)env_u64("HEARTH_PULL_CONNECT_TIMEOUT", 30);
    long low_time = (long)env_u64("HEARTH_PULL_LOW_SPEED_TIME", 30);
    long low_limit = (long)env_u64("HEARTH_PULL_LOW_SPEED_LIMIT", 1024);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* followed by hand, with checks */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, connect_timeout);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, low_limit);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, low_time);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hearth/0.1");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);

    const char *token = getenv("HF_TOKEN");
    if (token && !*token) token = NULL;
    for (const char *t = token; t && *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f) { /* no header injection */
            curl_easy_cleanup(h);
            return hearth_errf(err,
                               "HF_TOKEN: expected printable ASCII without spaces, found byte "
                               "0x%02x at offset %td",
                               (unsigned char)*t, t - token);
        }
    char url[PULL_URL_MAX];
    snprintf(url, sizeof url, "%s", src->url);
    int rc = -1;
    int redirects = 0, restarts = 0;
    for (;;) {
        CURLcode cc = request(h, x, url, src, token, curl_msg);
        if (x->restart && restarts == 0) { /* once, without Range, from the first URL */
            x->restart = false;
            restarts++;
            if (reset_partial(x) != 0) break;
            snprintf(url, sizeof url, "%s", src->url);
            redirects = 0;
            continue;
        }
        if (x->restart) {
            xfer_fail(x, "server keeps answering with the wrong byte range (%s)", x->content_range);
            break;
        }
        if (x->failed) {
            if (x->writing) keep_note(x);
            break;
        }
        if (cc != CURLE_OK) {
            const char *why = curl_msg[0] ? curl_msg : curl_easy_strerror(cc);
            if (cc == CURLE_OPERATION_TIMEDOUT && x->headers_done)
                xfer_fail(x,
                          "transfer too slow: below %ld bytes/s for %ld s after %" PRIu64
                          " bytes (%s)",
                          low_limit, low_time, x->have, why);
            else if (x->writing && x->total != PULL_SIZE_UNKNOWN)
                xfer_fail(x,
                          "short body: expected %" PRIu64 " bytes, received %" PRIu64
                          " before the transfer failed (%s)",
                          x->total, x->have, why);
            else if (x->writing)
                xfer_fail(x, "transfer failed after %" PRIu64 " bytes: %s", x->have, why);
            else if (cc == CURLE_WRITE_ERROR && x->discarded >= MAX_DISCARD_BODY)
                xfer_fail(x, "HTTP %ld from %s with a body larger than %u bytes", x->status, url,
                          MAX_DISCARD_BODY);
            else
                xfer_fail(x, "cannot fetch %s: %s", url, why);
            progress_break(x);
            if (x->writing) keep_note(x);
            break;
        }
        long st = x->status;
        if (st >= 300 && st < 400 && st != 304) {
            char *loc = NULL;
            curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
            if (!loc) {
                xfer_fail(x, "HTTP %ld redirect from %s without a Location", st, url);
                break;
            }
            if (++redirects > PULL_MAX_REDIRECTS) {
                xfer_fail(x, "too many redirects: more than %d (last one from %s to %s)",
                          PULL_MAX_REDIRECTS, url, loc);
                break;
            }
            if (pull_redirect_check(url, loc, err) != 0) {
                x->failed = true;
                break;
            }
            if (strlen(loc) >= sizeof url) {
                xfer_fail(x, "redirect location too long (%zu bytes)", strlen(loc));
                break;
            }
            snprintf(url, sizeof url, "%s", loc);
            continue;
        }
        if (st == 416 && x->have > 0) {
            /* Nothing after our offset: either the partial file is already the
             * whole file, or it is longer than the file and must go. */
            uint64_t a, b, t;
            if (x->has_content_range &&
                pull_parse_content_range(x->content_range, &a, &b, &t) == 1 && t == x->have &&
                (x->linked_size == PULL_SIZE_UNKNOWN || x->linked_size == t)) {
                x->total = t;
                x->complete_already = true;
                rc = 0;
                break;
            }
            if (restarts == 0) {
                if (x->log)
                    fprintf(x->log, "hearth: server refused the range (416); starting over\n");
                restarts++;
                if (reset_partial(x) != 0) break;
                snprintf(url, sizeof url, "%s", src->url);
                redirects = 0;
                continue;
            }
        }
        if (st != 200 && st != 206) {
            xfer_fail(x, "HTTP %ld%s%s from %s%s%s%s", st, x->reason[0] ? " " : "", x->reason, url,
                      x->snippet_len ? " (body: " : "", x->snippet, x->snippet_len ? ")" : "");
            break;
        }
        /* A complete response: the size check. */
        draw_progress(x, true);
        if (x->total != PULL_SIZE_UNKNOWN && x->have != x->total) {
            xfer_fail(x, "short body: expected %" PRIu64 " bytes, received %" PRIu64, x->total,
                      x->have);
            keep_note(x);
            break;
        }
        rc = 0;
        break;
    }
    progress_break(x);
    curl_easy_cleanup(h);
    return rc;
}

static int hash_file(const char *path, char hex[SHA256_HEX_SIZE], hearth_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return hearth_errf(err, "cannot open '%s': %s", path, strerror(errno));
    xfer x = {.fd = fd, .partial = path};
    sha256_init(&x.sha);
    int rc = hash_existing(&x, err);
    close(fd);
    if (rc) return -1;
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_final(&x.sha, d);
    sha256_hex(d, hex);
    return 0;
}

int pull_run(const pull_opts *o, pull_result *r, hearth_err *err) {
    memset(r, 0, sizeof *r);
    char want[SHA256_HEX_SIZE] = "";
    if (o->sha256 && !pull_hex_digest(o->sha256, want))
        return hearth_errf(err, "--sha256: expected 64 hex digits, found '%s'", o->sha256);
    pull_source src;
    if (pull_parse_source(o->source, NULL, &src, err) != 0) return -1;
    const char *name = o->name ? o->name : src.name;
    size_t nlen = strlen(name);
    if (!store_name_ok(name) ||
        (nlen >= strlen(STORE_PARTIAL_SUFFIX) &&
         !strcmp(name + nlen - strlen(STORE_PARTIAL_SUFFIX), STORE_PARTIAL_SUFFIX)))
        return hearth_errf(err,
                           "file name '%s' is not usable in the store (expected 1-255 bytes, "
                           "no '/', not starting with '.', not ending in .partial)",
                           name);

    char dir[PULL_URL_MAX - STORE_NAME_MAX - 16];
    if (store_dir_create(dir, sizeof dir, err) != 0) return -1;
    char partial[PULL_URL_MAX + 16];
    snprintf(r->path, sizeof r->path, "%s/%s", dir, name);
    snprintf(partial, sizeof partial, "%s%s", r->path, STORE_PARTIAL_SUFFIX);

    struct stat st;
    if (!o->force && stat(r->path, &st) == 0) {
        r->already_present = true;
        r->size = (uint64_t)st.st_size;
        if (want[0]) { /* the caller named a digest: hold the file to it */
            if (hash_file(r->path, r->sha256, err) != 0) return -1;
            if (strcmp(r->sha256, want) != 0)
                return hearth_errf(err,
                                   "%s is already in the store but its SHA-256 differs: expected "
                                   "%s, found %s (use --force to download it again)",
                                   name, want, r->sha256);
            r->verified = true;
            snprintf(r->hash_source, sizeof r->hash_source, "--sha256");
        }
        return 0;
    }

    int fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return hearth_errf(err, "cannot open '%s': %s", partial, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return hearth_errf(err, "'%s' is locked: another hearth pull is downloading it", partial);
    }
    xfer x = {.err = err,
              .fd = fd,
              .partial = partial,
              .dir = dir,
              .log = o->log,
              .linked_size = PULL_SIZE_UNKNOWN,
              .total = PULL_SIZE_UNKNOWN,
              .max_bytes = env_u64("HEARTH_PULL_MAX_BYTES", DEFAULT_MAX_BYTES),
              .progress = o->progress,
              .interval = (double)env_u64("HEARTH_PULL_PROGRESS_INTERVAL", 5)};
    sha256_init(&x.sha);
    int rc = hash_existing(&x, err);
    if (rc == 0 && x.have > 0) {
        r->resumed_from = x.have;
        if (o->log) fprintf(o->log, "hearth: resuming %s at %" PRIu64 " bytes\n", name, x.have);
    }
    x.session_start = x.have;
    if (rc == 0 && o->log) fprintf(o->log, "hearth: pulling %s\n  -> %s\n", src.url, r->path);

    if (rc == 0) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = download(&x, &src, err);
        curl_global_cleanup();
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = hearth_errf(err, "cannot sync '%s': %s", partial, strerror(errno));
    if (rc == 0 && !x.complete_already && x.have < r->resumed_from)
        r->resumed_from = 0; /* started over */
    struct stat pst;         /* an empty partial file is nothing worth resuming */
    if (rc != 0 && fstat(fd, &pst) == 0 && pst.st_size == 0) unlink(partial);
    close(fd);
    if (rc != 0) return -1;

    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_final(&x.sha, d);
    sha256_hex(d, r->sha256);
    r->size = x.have;
    const char *from = "";
    if (want[0])
        from = "--sha256";
    else if (x.linked_hash[0])
        from = "X-Linked-ETag", strcpy(want, x.linked_hash);
    else if (x.etag_hash[0])
        from = "ETag", strcpy(want, x.etag_hash);
    if (want[0]) {
        if (strcmp(want, r->sha256) != 0) {
            unlink(partial); /* these bytes can never verify; a rerun starts clean */
            return hearth_errf(err,
                               "SHA-256 mismatch for %s: expected %s (from %s), found %s; the "
                               "download was deleted",
                               name, want, from, r->sha256);
        }
        r->verified = true;
        snprintf(r->hash_source, sizeof r->hash_source, "%s", from);
    }
    if (rename(partial, r->path) != 0)
        return hearth_errf(err, "cannot rename '%s' to '%s': %s", partial, r->path,
                           strerror(errno));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {            /* make the rename durable; best effort */
        if (fsync(dfd) != 0) { /* nothing more to do */
        }
        close(dfd);
    }
    return 0;
}
