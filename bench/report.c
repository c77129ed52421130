/*
 * The three ways topk-bench prints its rows: a readable table (with a profile line under a row when
 * --profile), CSV (one header, one line a row, the profile's columns empty when not profiled) and JSON
 * (an array of objects with the CSV's names; "profile" is null or an object). All three carry the same
 * numbers: bench/compare.py and bench/plot.c read the CSV by column name.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "bench.h"

static const char csv_header[] =
    "backend,input,batch,vocab,stride,k,dtype,order,threads,samples,median_us,min_us,max_us,gbps,read_floor_us,"
    "bw_fraction,max_abs_diff,indices_equal,values_equal,prof_total_us,prof_validate_us,prof_tuning_us,"
    "prof_backend_us,prof_cpu_select_us,prof_cpu_merge_us,prof_gpu_plan_us,prof_gpu_launch_wait_us,"
    "prof_gpu_copies_us,prof_gpu_kernel_select_us,prof_gpu_kernel_merge_us,prof_threads,prof_chunk,"
    "prof_teams_per_row\n";

#define STAGE(field) {#field, offsetof(topk_stage_times, field##_us)}
const stage_field stage_fields[STAGE_COUNT] = {
    STAGE(total),      STAGE(validate),       STAGE(tuning),          STAGE(backend),
    STAGE(cpu_select), STAGE(cpu_merge),      STAGE(gpu_plan),        STAGE(gpu_launch_wait),
    STAGE(gpu_copies), STAGE(gpu_kernel_select), STAGE(gpu_kernel_merge),
};

static bool first_json_row;

void report_begin(report_format format, bool profile)
{
    (void)profile;
    switch (format) {
    case REPORT_CSV: fputs(csv_header, stdout); break;
    case REPORT_JSON:
        fputs("[", stdout);
        first_json_row = true;
        break;
    case REPORT_TABLE:
        printf("%-9s %6s %9s %5s %-5s %11s %11s %11s %8s %11s %8s %12s %s\n", "backend", "batch", "vocab", "k",
               "dtype", "median_us", "min_us", "max_us", "GB/s", "floor_us", "bw_frac", "max_abs_diff",
               "matches reference");
        break;
    }
    fflush(stdout);
}

static double gbps(const bench_row *row)
{
    double bytes = (double)row->shape.batch * (double)row->shape.vocab * topk_dtype_size(row->shape.dtype);
    return bytes / row->r.time.median_s / 1e9;
}

/* A string as a JSON string: paths may hold quotes or backslashes. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

/* A double as JSON: non-finite values have no JSON spelling, so null. */
static void json_number(const char *name, double v, const char *after)
{
    if (isfinite(v)) printf("\"%s\": %.6g%s", name, v, after);
    else printf("\"%s\": null%s", name, after);
}

static void print_csv(const bench_row *row)
{
    const case_result *r = &row->r;
    double floor_us = r->read_floor_s * 1e6;
    printf("%s,%s,%lld,%lld,%lld,%lld,%s,%s,%d,%lld,%.3f,%.3f,%.3f,%.3f,", row->backend, row->input,
           (long long)row->shape.batch, (long long)row->shape.vocab, (long long)row->stride, (long long)row->shape.k,
           dtype_name(row->shape.dtype), row->smallest ? "smallest" : "largest", row->threads,
           (long long)r->time.samples, r->time.median_s * 1e6, r->time.min_s * 1e6, r->time.max_s * 1e6, gbps(row));
    if (isnan(floor_us)) printf(",,");
    else printf("%.3f,%.4f,", floor_us, r->read_floor_s / r->time.median_s);
    printf("%g,%d,%d", r->max_abs_diff, r->indices_equal, r->values_equal);
    for (int i = 0; i < STAGE_COUNT; i++) r->profiled ? printf(",%.3f", stage_value(&r->profile, i)) : printf(",");
    if (r->profiled)
        printf(",%lld,%lld,%lld\n", (long long)r->profile.threads, (long long)r->profile.chunk,
               (long long)r->profile.teams_per_row);
    else
        printf(",,,\n");
}

static void print_json(const bench_row *row)
{
    const case_result *r = &row->r;
    printf("%s\n  {\"backend\": ", first_json_row ? "" : ",");
    first_json_row = false;
    json_string(row->backend);
    printf(", \"input\": ");
    json_string(row->input);
    printf(", \"batch\": %lld, \"vocab\": %lld, \"stride\": %lld, \"k\": %lld, \"dtype\": \"%s\", \"order\": \"%s\", "
           "\"threads\": %d, \"samples\": %lld, ",
           (long long)row->shape.batch, (long long)row->shape.vocab, (long long)row->stride, (long long)row->shape.k,
           dtype_name(row->shape.dtype), row->smallest ? "smallest" : "largest", row->threads,
           (long long)r->time.samples);
    json_number("median_us", r->time.median_s * 1e6, ", ");
    json_number("min_us", r->time.min_s * 1e6, ", ");
    json_number("max_us", r->time.max_s * 1e6, ", ");
    json_number("gbps", gbps(row), ", ");
    json_number("read_floor_us", r->read_floor_s * 1e6, ", ");
    json_number("bw_fraction", r->read_floor_s / r->time.median_s, ", ");
    json_number("max_abs_diff", r->max_abs_diff, ", ");
    printf("\"indices_equal\": %s, \"values_equal\": %s, \"profile\": ", r->indices_equal ? "true" : "false",
           r->values_equal ? "true" : "false");
    if (!r->profiled) {
        printf("null}");
        return;
    }
    putchar('{');
    for (int i = 0; i < STAGE_COUNT; i++) {
        char name[40];
        snprintf(name, sizeof name, "%s_us", stage_fields[i].name);
        json_number(name, stage_value(&r->profile, i), ", ");
    }
    printf("\"threads\": %lld, \"chunk\": %lld, \"teams_per_row\": %lld}}", (long long)r->profile.threads,
           (long long)r->profile.chunk, (long long)r->profile.teams_per_row);
}

static void print_table(const bench_row *row)
{
    const case_result *r = &row->r;
    double floor_us = r->read_floor_s * 1e6;
    printf("%-9s %6lld %9lld %5lld %-5s %11.2f %11.2f %11.2f %8.2f ", row->backend, (long long)row->shape.batch,
           (long long)row->shape.vocab, (long long)row->shape.k, dtype_name(row->shape.dtype), r->time.median_s * 1e6,
           r->time.min_s * 1e6, r->time.max_s * 1e6, gbps(row));
    if (isnan(floor_us)) printf("%11s %8s ", "-", "-");
    else printf("%11.2f %8.3f ", floor_us, r->read_floor_s / r->time.median_s);
    printf("%12g %s\n", r->max_abs_diff,
           !r->indices_equal ? "NO: indices differ" : !r->values_equal ? "NO: values differ" : "yes");
    if (!r->profiled) return;
    /* Only the stages this backend measured: a zero is "not measured". */
    printf("          profile (median us):");
    for (int i = 0; i < STAGE_COUNT; i++)
        if (stage_value(&r->profile, i) > 0) printf(" %s %.2f", stage_fields[i].name, stage_value(&r->profile, i));
    printf(" | threads %lld chunk %lld teams_per_row %lld (0: heuristic)\n", (long long)r->profile.threads,
           (long long)r->profile.chunk, (long long)r->profile.teams_per_row);
}

void report_row(report_format format, const bench_row *row)
{
    switch (format) {
    case REPORT_CSV: print_csv(row); break;
    case REPORT_JSON: print_json(row); break;
    case REPORT_TABLE: print_table(row); break;
    }
    fflush(stdout);
}

void report_end(report_format format)
{
    if (format == REPORT_JSON) fputs("\n]\n", stdout);
    fflush(stdout);
}
