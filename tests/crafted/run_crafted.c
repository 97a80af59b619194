/* run_crafted HEARTH DIR [RSS_BASE_MIB]: runs `hearth inspect FILE` and
 * `hearth run -m FILE -p hi -n 4 -t 1` on every case of DIR/manifest.tsv
 * (written by gen_crafted) and checks, for each command:
 *   - it exits (no signal) within 120 s,
 *   - with the status the manifest expects (ok: 0, fail: 1, any: 0 or 1),
 *   - a failure's stderr names the problem (one of the manifest's
 *     '|'-separated substrings, case-insensitive; at least a message),
 *   - its peak RSS (wait4's ru_maxrss) stays under RSS_BASE_MIB (default 64,
 *     or $HEARTH_CRAFTED_RSS_BASE_MIB) + the file's size.
 * Prints every case with its description and result; exits 1 if any failed. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 120

typedef struct result {
    bool signaled, timed_out;
    int status; /* exit status, or the signal */
    long maxrss_kib;
    double seconds;
    char err[2048]; /* stderr (the start) */
} result;

static int run_cmd(char *const argv[], const char *errpath, result *r) {
    memset(r, 0, sizeof *r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int out = open("/dev/null", O_WRONLY);
        int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (out < 0 || err < 0 || in < 0) _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    struct rusage ru;
    int st = 0;
    for (;;) {
        pid_t w = wait4(pid, &st, WNOHANG, &ru);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) return -1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > TIMEOUT_S && !r->timed_out) {
            r->timed_out = true;
            kill(pid, SIGKILL);
        }
        struct timespec d = {0, 5 * 1000 * 1000};
        nanosleep(&d, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    r->maxrss_kib = ru.ru_maxrss;
    if (WIFSIGNALED(st)) {
        r->signaled = true;
        r->status = WTERMSIG(st);
    } else {
        r->status = WEXITSTATUS(st);
    }
    FILE *f = fopen(errpath, "rb");
    if (f) {
        size_t n = fread(r->err, 1, sizeof r->err - 1, f);
        r->err[n] = 0;
        fclose(f);
    }
    return 0;
}

/* One of the '|'-separated patterns occurs in text (case-insensitive). */
static bool matches(const char *text, const char *patterns) {
    if (!*patterns) return text[0] != 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", patterns);
    for (char *save = NULL, *p = strtok_r(buf, "|", &save); p; p = strtok_r(NULL, "|", &save))
        if (strcasestr(text, p)) return true;
    return false;
}

static void one_line(char *s) {
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    if (strlen(s) > 160) strcpy(s + 157, "...");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: run_crafted HEARTH DIR [RSS_BASE_MIB]\n");
        return 2;
    }
    const char *hearth = argv[1], *dir = argv[2];
    long base_mib = 64;
    if (getenv("HEARTH_CRAFTED_RSS_BASE_MIB"))
        base_mib = atol(getenv("HEARTH_CRAFTED_RSS_BASE_MIB"));
    if (argc > 3) base_mib = atol(argv[3]);
    char mpath[4096], errpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.tsv", dir);
    snprintf(errpath, sizeof errpath, "%s/.stderr", dir);
    FILE *m = fopen(mpath, "r");
    if (!m) {
        fprintf(stderr, "run_crafted: cannot open %s: %s\n", mpath, strerror(errno));
        return 1;
    }
    int n_cases = 0, n_fail = 0;
    long worst_over_kib = -(1L << 40);
    char line[2048];
    printf("crafted GGUF cases (inspect / run expectations; RSS bound %ld MiB + file size):\n",
           base_mib);
    while (fgets(line, sizeof line, m)) {
        line[strcspn(line, "\n")] = 0;
        char *f[5] = {0};
        char *save = NULL;
        int nf = 0;
        for (char *p = line; nf < 5; p = NULL) {
            char *t = strtok_r(p, "\t", &save);
            if (!t) break;
            f[nf++] = t;
        }
        if (nf < 4) continue; /* strtok_r skips an empty pattern: then 4 fields */
        const char *name = f[0], *exp[2] = {f[1], f[2]};
        const char *pattern = nf == 5 ? f[3] : "";
        const char *desc = nf == 5 ? f[4] : f[3];
        char file[4096];
        snprintf(file, sizeof file, "%s/%s.gguf", dir, name);
        struct stat st;
        if (stat(file, &st) != 0) {
            printf("FAIL %-32s missing file %s\n", name, file);
            n_fail++;
            continue;
        }
        n_cases++;
        printf("case %-32s %s\n", name, desc);
        char *cmds[2][16] = {
            {(char *)hearth, "inspect", file, NULL},
            {(char *)hearth, "run", "-m", file, "-p", "hi", "-n", "4", "-t", "1", NULL},
        };
        const char *cname[2] = {"inspect", "run"};
        for (int c = 0; c < 2; c++) {
            result r;
            if (run_cmd(cmds[c], errpath, &r) < 0) {
                printf("  FAIL %s: cannot run %s\n", cname[c], hearth);
                n_fail++;
                continue;
            }
            long limit_kib = base_mib * 1024 + (long)(st.st_size / 1024);
            char why[256] = "";
            if (r.timed_out)
                snprintf(why, sizeof why, "did not finish in %d s", TIMEOUT_S);
            else if (r.signaled)
                snprintf(why, sizeof why, "killed by signal %d", r.status);
            else if (r.status != 0 && r.status != 1)
                snprintf(why, sizeof why, "exit status %d (expected 0 or 1)", r.status);
            else if (!strcmp(exp[c], "ok") && r.status != 0)
                snprintf(why, sizeof why, "exit status %d, expected 0", r.status);
            else if (!strcmp(exp[c], "fail") && r.status != 1)
                snprintf(why, sizeof why, "exit status %d, expected 1", r.status);
            else if (r.status == 1 && !matches(r.err, pattern))
                snprintf(why, sizeof why,
                         "the message does not name the problem (expected one of '%s')", pattern);
            else if (r.maxrss_kib > limit_kib)
                snprintf(why, sizeof why, "peak RSS %ld KiB over the bound %ld KiB", r.maxrss_kib,
                         limit_kib);
            if (r.maxrss_kib - limit_kib > worst_over_kib)
                worst_over_kib = r.maxrss_kib - limit_kib;
            one_line(r.err);
            printf("  %s %-7s exit %d  rss %6.1f MiB  %5.2f s  %s%s%s\n", why[0] ? "FAIL" : "ok  ",
                   cname[c], r.status, (double)r.maxrss_kib / 1024, r.seconds,
                   r.status ? "stderr: " : "", r.status ? r.err : "", why[0] ? "" : "");
            if (why[0]) {
                printf("       -> %s\n", why);
                n_fail++;
            }
        }
    }
    fclose(m);
    unlink(errpath);
    printf("%d cases, %d commands run, %d failures; worst peak RSS margin %+ld KiB vs the bound\n",
           n_cases, 2 * n_cases, n_fail, worst_over_kib);
    return n_fail || n_cases == 0 ? 1 : 0;
}
