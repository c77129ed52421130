/*
 * The bench programs' command lines, read from one table per program (bench.h: flag, flag_table).
 *
 * The table is both the parser and the help: a flag cannot be parsed without appearing in --help, and
 * every value is checked the same way in every program (a number that is not one, out of its range or
 * missing, an unknown flag or choice), with a message that names the flag and exit status 2.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

enum { USAGE_COLUMN = 22 }; /* where help text starts: "  --batch N           rows" */

void flags_fail(const flag_table *t, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fprintf(stderr, "%s: ", t->program);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\ntry %s --help\n", t->program);
    exit(2);
}

static flag *find_flag(const flag_table *t, const char *name)
{
    for (size_t i = 0; i < t->count; i++)
        if (t->flags[i].name && !strcmp(t->flags[i].name, name)) return &t->flags[i];
    return NULL;
}

bool flag_given(const flag_table *t, const char *name)
{
    const flag *f = find_flag(t, name);
    return f && f->given > 0;
}

/* "a, b or c" of a choice's names. */
static void list_choices(const char *const *choices, char *out, size_t size)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; choices[i] && n < size; i++) {
        const char *joint = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        int w = snprintf(out + n, size - n, "%s%s", joint, choices[i]);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static void read_whole(const flag_table *t, const flag *f, const char *text)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (!*text || *end || errno == ERANGE || value < f->min || value > f->max)
        flags_fail(t, "%s %s: expected a whole number from %lld to %lld", f->name, text, (long long)f->min,
                   (long long)f->max);
    if (f->kind == FLAG_INT64) *(int64_t *)f->field = value;
    else *(int *)f->field = (int)value;
}

static void read_real(const flag_table *t, const flag *f, const char *text)
{
    char *end;
    /* strtof for a float field: the bits the program always had, without a second rounding */
    double value = f->kind == FLAG_FLOAT ? (double)strtof(text, &end) : strtod(text, &end);
    if (!*text || *end || !(value >= f->least && value <= f->most)) {
        if (isinf(f->most)) flags_fail(t, "%s %s: expected a number >= %g", f->name, text, f->least);
        flags_fail(t, "%s %s: expected a number from %g to %g", f->name, text, f->least, f->most);
    }
    if (f->kind == FLAG_FLOAT) *(float *)f->field = (float)value;
    else *(double *)f->field = value;
}

static void read_value(const flag_table *t, const flag *f, const char *text)
{
    switch (f->kind) {
    case FLAG_INT64:
    case FLAG_INT: read_whole(t, f, text); return;
    case FLAG_DOUBLE:
    case FLAG_FLOAT: read_real(t, f, text); return;
    case FLAG_STRING: *(const char **)f->field = text; return;
    case FLAG_CHOICE:
        for (int i = 0; f->choices[i]; i++)
            if (!strcmp(text, f->choices[i])) {
                *(int *)f->field = i;
                return;
            }
        char names[512];
        list_choices(f->choices, names, sizeof names);
        flags_fail(t, "%s %s: expected %s", f->name, text, names);
    case FLAG_CUSTOM: {
        char why[512] = "";
        if (!f->parse(f->field, text, why, sizeof why)) flags_fail(t, "%s %s: %s", f->name, text, why);
        return;
    }
    case FLAG_ON:
    case FLAG_OFF: return;
    }
}

void flags_parse(flag_table *t, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            flags_usage(t, stdout);
            exit(0);
        }
        flag *f = find_flag(t, argv[i]);
        if (!f) flags_fail(t, "unknown flag %s", argv[i]);
        f->given++;
        if (f->kind == FLAG_ON || f->kind == FLAG_OFF) {
            *(bool *)f->field = f->kind == FLAG_ON;
            continue;
        }
        /* "--batch --vocab 8" means a forgotten value, not a batch named "--vocab" */
        if (i + 1 == argc || !strncmp(argv[i + 1], "--", 2)) flags_fail(t, "missing value after %s", f->name);
        read_value(t, f, argv[++i]);
    }
}

/* The field's value as the usage's "(default X)". */
static void print_default(FILE *out, const flag *f)
{
    switch (f->kind) {
    case FLAG_INT64: fprintf(out, " (default %lld)", (long long)*(const int64_t *)f->field); return;
    case FLAG_INT: fprintf(out, " (default %d)", *(const int *)f->field); return;
    case FLAG_DOUBLE: fprintf(out, " (default %g)", *(const double *)f->field); return;
    case FLAG_FLOAT: fprintf(out, " (default %g)", (double)*(const float *)f->field); return;
    case FLAG_STRING: fprintf(out, " (default %s)", *(const char *const *)f->field); return;
    case FLAG_CHOICE: fprintf(out, " (default %s)", f->choices[*(const int *)f->field]); return;
    default: return;
    }
}

/* Help text that spans lines, each line after the first indented to the help column. */
static void print_help(FILE *out, const char *help)
{
    for (const char *line = help; *line;) {
        size_t n = strcspn(line, "\n");
        fprintf(out, "%.*s", (int)n, line);
        line += n;
        if (*line) {
            fprintf(out, "\n%*s", USAGE_COLUMN, "");
            line++;
        }
    }
}

void flags_usage(const flag_table *t, FILE *out)
{
    fprintf(out, "usage: %s [flags]\n%s", t->program, t->summary);
    for (size_t i = 0; i < t->count; i++) {
        const flag *f = &t->flags[i];
        if (!f->name) { /* a heading */
            fprintf(out, "%s\n", f->help);
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        fprintf(out, "  %-*s", USAGE_COLUMN - 3, name);
        fputc(' ', out);
        print_help(out, f->help);
        if (f->show_default) print_default(out, f);
        fputc('\n', out);
    }
    fprintf(out, "  %-*s this text\n%s", USAGE_COLUMN - 3, "--help", t->footer ? t->footer : "");
}
