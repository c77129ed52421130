/*
 * --plot: two charts side by side in one PNG, drawn by gnuplot (Debian: gnuplot-nox).
 *   left:  median us against batch, one line per source (backend or peer) x vocab x k x dtype;
 *   right: median us against vocab, one line per source x batch x k x dtype.
 * Only groups with at least two points make a line; when no group has two, a chart shows every point
 * of each source as unconnected points instead, so a chart is never empty. Both axes are logarithmic.
 * The data goes to temporary files beside the PNG (removed afterwards); gnuplot reads the script on its
 * stdin.
 */
#define _POSIX_C_SOURCE 200809L /* popen, pclose */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static bool fail(char *message, size_t size, const char *format, const char *detail)
{
    snprintf(message, size, format, detail);
    return false;
}

/* --- CSV input: topk-bench's (backend column) or a peer's (peer column, maybe graph_median_us). */

enum { MAX_FIELDS = 64 };

/* Splits a CSV line in place (no quoting: neither side writes any). Returns the field count. */
static int split_csv(char *line, char *fields[MAX_FIELDS])
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    for (char *at = line; n < MAX_FIELDS;) {
        fields[n++] = at;
        char *comma = strchr(at, ',');
        if (!comma) break;
        *comma = 0;
        at = comma + 1;
    }
    return n;
}

static int column(char *const header[], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(header[i], name)) return i;
    return -1;
}

static void add_point(plot_point **points, size_t *count, const char *source, char *const f[], const int col[5],
                      double us)
{
    *points = bench_realloc(*points, (*count + 1) * sizeof **points);
    plot_point *p = &(*points)[(*count)++];
    snprintf(p->source, sizeof p->source, "%s", source);
    p->batch = atoll(f[col[0]]);
    p->vocab = atoll(f[col[1]]);
    p->k = atoll(f[col[2]]);
    snprintf(p->dtype, sizeof p->dtype, "%s", f[col[3]]);
    p->us = us;
}

bool plot_read_csv(const char *path, plot_point **points, size_t *count, char *message, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) return fail(message, size, "cannot open %s", path);
    char head_line[4096], line[4096], *head[MAX_FIELDS], *fields[MAX_FIELDS];
    /* topk-bench prints its banner on stderr, but a file may have been made with 2>&1: skip to the header. */
    int nh = 0, source_col = -1;
    bool ours = false;
    while (fgets(head_line, sizeof head_line, f)) {
        nh = split_csv(head_line, head);
        ours = column(head, nh, "backend") >= 0;
        source_col = ours ? column(head, nh, "backend") : column(head, nh, "peer");
        if (source_col >= 0) break;
    }
    const int col[5] = {column(head, nh, "batch"), column(head, nh, "vocab"), column(head, nh, "k"),
                        column(head, nh, "dtype"), column(head, nh, "median_us")};
    int graph = column(head, nh, "graph_median_us");
    if (source_col < 0 || col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0 || col[4] < 0) {
        fclose(f);
        return fail(message, size, "%s: no header with backend or peer, batch, vocab, k, dtype and median_us",
                    path);
    }
    size_t before = *count;
    while (fgets(line, sizeof line, f)) {
        int n = split_csv(line, fields);
        if (n < nh || !*fields[col[4]]) continue; /* a short line, or a case that did not run */
        char source[64];
        snprintf(source, sizeof source, "%s%s", ours ? "libtopk " : "", fields[source_col]);
        add_point(points, count, source, fields, col, atof(fields[col[4]]));
        if (graph >= 0 && *fields[graph]) {
            snprintf(source, sizeof source, "%s graph", fields[source_col]);
            add_point(points, count, source, fields, col, atof(fields[graph]));
        }
    }
    fclose(f);
    if (*count == before) return fail(message, size, "%s: no rows", path);
    return true;
}

/* --- Grouping: a line is the points that agree on everything but the x dimension. */

typedef enum axis { BY_BATCH, BY_VOCAB } axis;

static bool same_line(const plot_point *a, const plot_point *b, axis x)
{
    return !strcmp(a->source, b->source) && !strcmp(a->dtype, b->dtype) && a->k == b->k &&
           (x == BY_BATCH ? a->vocab == b->vocab : a->batch == b->batch);
}

static int64_t x_of(const plot_point *p, axis x) { return x == BY_BATCH ? p->batch : p->vocab; }

static int by_x_batch(const void *a, const void *b)
{
    int64_t x = ((const plot_point *)a)->batch, y = ((const plot_point *)b)->batch;
    return (x > y) - (x < y);
}

static int by_x_vocab(const void *a, const void *b)
{
    int64_t x = ((const plot_point *)a)->vocab, y = ((const plot_point *)b)->vocab;
    return (x > y) - (x < y);
}

/* Writes the chart's lines as gnuplot data blocks (two blank lines apart), each headed by its quoted
 * title (gnuplot's columnheader); returns how many. */
static int write_lines(FILE *data, const plot_point *points, size_t count, axis x, bool every_point)
{
    bool *done = calloc(count ? count : 1, sizeof *done);
    plot_point *line = bench_realloc(NULL, (count ? count : 1) * sizeof *line);
    int blocks = 0;
    for (size_t i = 0; i < count; i++) {
        if (done[i]) continue;
        size_t n = 0;
        for (size_t j = i; j < count; j++) {
            bool member = every_point ? !strcmp(points[j].source, points[i].source) : same_line(&points[i], &points[j], x);
            if (!member || done[j]) continue;
            /* one point per x: the first one */
            bool seen = false;
            for (size_t m = 0; m < n && !seen; m++) seen = x_of(&line[m], x) == x_of(&points[j], x);
            if (!seen) line[n++] = points[j];
            done[j] = true;
        }
        if (n < 2 && !every_point) continue;
        qsort(line, n, sizeof *line, x == BY_BATCH ? by_x_batch : by_x_vocab);
        if (every_point) fprintf(data, "\"%s (every case)\" title\n", line[0].source);
        else if (x == BY_BATCH)
            fprintf(data, "\"%s V=%lld k=%lld %s\" title\n", line[0].source, (long long)line[0].vocab,
                    (long long)line[0].k, line[0].dtype);
        else
            fprintf(data, "\"%s B=%lld k=%lld %s\" title\n", line[0].source, (long long)line[0].batch,
                    (long long)line[0].k, line[0].dtype);
        for (size_t m = 0; m < n; m++) fprintf(data, "%lld %.6g\n", (long long)x_of(&line[m], x), line[m].us);
        fprintf(data, "\n\n");
        blocks++;
    }
    free(done);
    free(line);
    return blocks;
}

/* Writes one chart's data file; returns its block count (never 0 when there are points), -1 on failure.
 * *scatter: the chart shows every point of each source, unconnected (no line had two points). */
static int write_chart(const char *path, const plot_point *points, size_t count, axis x, bool *scatter)
{
    FILE *data = fopen(path, "w");
    if (!data) return -1;
    int blocks = write_lines(data, points, count, x, false);
    *scatter = blocks == 0;
    if (*scatter) blocks = write_lines(data, points, count, x, true);
    return fclose(data) == 0 ? blocks : -1;
}

static void plot_command(FILE *gp, const char *path, int blocks, bool scatter)
{
    fprintf(gp, "plot for [i=0:%d] '%s' index i using 1:2 with %s title columnheader(1)\n", blocks - 1, path,
            scatter ? "points pointsize 1.5" : "linespoints");
}

bool plot_png(const char *png, const char *title, const plot_point *points, size_t count, char *message, size_t size)
{
    if (count == 0) return fail(message, size, "%s: nothing to plot", png);
    if (system("command -v gnuplot >/dev/null 2>&1") != 0)
        return fail(message, size, "--plot %s: gnuplot is not installed (Debian: apt-get install gnuplot-nox)", png);
    char by_batch_path[4200], by_vocab_path[4200];
    snprintf(by_batch_path, sizeof by_batch_path, "%s.batch.dat", png);
    snprintf(by_vocab_path, sizeof by_vocab_path, "%s.vocab.dat", png);
    bool batch_scatter, vocab_scatter;
    int by_batch = write_chart(by_batch_path, points, count, BY_BATCH, &batch_scatter);
    int by_vocab = write_chart(by_vocab_path, points, count, BY_VOCAB, &vocab_scatter);
    bool ok = by_batch > 0 && by_vocab > 0;
    if (!ok) fail(message, size, "cannot write the plot's data beside %s", png);
    FILE *gp = ok ? popen("gnuplot", "w") : NULL;
    if (ok && !gp) ok = fail(message, size, "cannot start gnuplot for %s", png);
    if (gp) {
        fprintf(gp, "set terminal pngcairo size 1800,900 noenhanced font ',10'\n");
        fprintf(gp, "set output '%s'\n", png);
        fprintf(gp, "set grid\nset key outside bottom center horizontal maxcols 3 font ',8'\n");
        fprintf(gp, "set logscale y 10\nset format y '%%g'\nset ylabel 'median us per call (log)'\n");
        fprintf(gp, "set multiplot layout 1,2 title '%s'\n", title);
        fprintf(gp, "set title 'time against batch'\nset xlabel 'batch (rows, log 2)'\n");
        fprintf(gp, "set logscale x 2\nset format x '%%g'\n");
        plot_command(gp, by_batch_path, by_batch, batch_scatter);
        fprintf(gp, "set title 'time against vocab'\nset xlabel 'vocab (columns, log 10)'\n");
        fprintf(gp, "set logscale x 10\nset format x '%%.0s%%c'\n");
        plot_command(gp, by_vocab_path, by_vocab, vocab_scatter);
        fprintf(gp, "unset multiplot\n");
        if (pclose(gp) != 0) ok = fail(message, size, "gnuplot failed drawing %s (its messages are above)", png);
    }
    remove(by_batch_path);
    remove(by_vocab_path);
    return ok;
}
