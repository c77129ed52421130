/*
 * The TOPK_* environment variables read by topk_ctx_create: TOPK_BACKEND overrides the backend asked
 * for, the tuning variables set the context's parameters, and a value that is not understood is
 * TOPK_ERR_BAD_ENV with *ctx set to NULL (a typo must not silently run something else).
 *
 * Every test sets only the variables it is about, after clearing all of them so that a developer's
 * shell cannot change the outcome, and restores them when done.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *const variables[] = {"TOPK_BACKEND", "TOPK_THREADS", "TOPK_TEAMS_PER_ROW", "TOPK_CHUNK",
                                        "TOPK_PROFILE", "TOPK_TEAM_THREADS", "TOPK_SHRINK_AT", "TOPK_SAMPLE_LIST"};
enum { VARIABLE_COUNT = sizeof variables / sizeof variables[0] };
static char *saved[VARIABLE_COUNT];

static void clear_environment(void)
{
    for (int i = 0; i < VARIABLE_COUNT; i++) {
        const char *value = getenv(variables[i]);
        saved[i] = value ? strdup(value) : NULL;
        unsetenv(variables[i]);
    }
}

static void restore_environment(void)
{
    for (int i = 0; i < VARIABLE_COUNT; i++) {
        if (saved[i]) {
            setenv(variables[i], saved[i], 1);
            free(saved[i]);
            saved[i] = NULL;
        } else {
            unsetenv(variables[i]);
        }
    }
}

TestSuite(environment, .init = clear_environment, .fini = restore_environment);

/* topk_ctx_create with name=value set; the variable is unset again afterwards. */
static topk_status create_with(const char *name, const char *value, topk_backend backend, topk_ctx **ctx)
{
    setenv(name, value, 1);
    *ctx = (topk_ctx *)ctx; /* not NULL, so that setting it to NULL shows */
    topk_status s = topk_ctx_create(ctx, backend);
    unsetenv(name);
    return s;
}

static void expect_bad_env(const char *name, const char *value)
{
    topk_ctx *ctx;
    topk_status s = create_with(name, value, TOPK_BACKEND_REFERENCE, &ctx);
    cr_assert(s == TOPK_ERR_BAD_ENV, "%s=\"%s\": returned \"%s\"", name, value, topk_strerror(s));
    cr_assert(ctx == NULL, "%s=\"%s\": *ctx not set to NULL", name, value);
}

Test(environment, tuning_values_out_of_range)
{
    expect_bad_env("TOPK_THREADS", "99999999999999999999");
    expect_bad_env("TOPK_THREADS", "4294967297");
    expect_bad_env("TOPK_THREADS", " 4");
    expect_bad_env("TOPK_THREADS", "+4");
    expect_bad_env("TOPK_TEAMS_PER_ROW", "-1");
    expect_bad_env("TOPK_CHUNK", "4x");
    expect_bad_env("TOPK_PROFILE", "2");
    expect_bad_env("TOPK_TEAM_THREADS", "48");   /* not whole warps */
    expect_bad_env("TOPK_TEAM_THREADS", "2048"); /* above a CUDA block */
    expect_bad_env("TOPK_TEAM_THREADS", "16");
    expect_bad_env("TOPK_SHRINK_AT", "4097"); /* above the team's buffer */
    expect_bad_env("TOPK_SHRINK_AT", "-1");
    expect_bad_env("TOPK_SAMPLE_LIST", "1025"); /* longer than the GPU's list */
}

/* Every knob's variable lands in its parameter (one table, src/knobs.c), on any backend. */
Test(environment, knobs_read_into_params)
{
    static const struct {
        const char *name, *value;
        topk_param param;
    } knobs[] = {{"TOPK_THREADS", "3", TOPK_PARAM_THREADS}, {"TOPK_TEAMS_PER_ROW", "12", TOPK_PARAM_TEAMS_PER_ROW},
                 {"TOPK_CHUNK", "4096", TOPK_PARAM_CHUNK}, {"TOPK_PROFILE", "1", TOPK_PARAM_PROFILE},
                 {"TOPK_TEAM_THREADS", "512", TOPK_PARAM_TEAM_THREADS}, {"TOPK_SHRINK_AT", "300", TOPK_PARAM_SHRINK_AT},
                 {"TOPK_SAMPLE_LIST", "1", TOPK_PARAM_SAMPLE_LIST}};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        topk_ctx *ctx;
        int64_t value = -1;
        cr_assert(create_with(knobs[i].name, knobs[i].value, TOPK_BACKEND_CPU, &ctx) == TOPK_OK, "%s", knobs[i].name);
        cr_assert(topk_ctx_get_param(ctx, knobs[i].param, &value) == TOPK_OK && value == atoll(knobs[i].value),
                  "%s=%s read back as %lld", knobs[i].name, knobs[i].value, (long long)value);
        topk_ctx_free(ctx);
    }
}

Test(environment, unknown_backend)
{
    expect_bad_env("TOPK_BACKEND", "bogus");
    expect_bad_env("TOPK_BACKEND", "cpu2");
}

Test(environment, backend_overrides_request)
{
    static const struct {
        const char *value;
        topk_backend requested, expected;
    } overrides[] = {
        {"cpu", TOPK_BACKEND_REFERENCE, TOPK_BACKEND_CPU},
        {"reference", TOPK_BACKEND_CPU, TOPK_BACKEND_REFERENCE},
        {"auto", TOPK_BACKEND_REFERENCE, TOPK_BACKEND_CPU}, /* auto without a GPU is the cpu */
    };
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        topk_ctx *ctx;
        topk_status s = create_with("TOPK_BACKEND", overrides[i].value, overrides[i].requested, &ctx);
        cr_assert(s == TOPK_OK, "TOPK_BACKEND=%s: %s", overrides[i].value, topk_strerror(s));
        topk_backend got = topk_ctx_backend(ctx);
        bool auto_found_gpu = overrides[i].expected == TOPK_BACKEND_CPU && !strcmp(overrides[i].value, "auto") &&
                              got == TOPK_BACKEND_OFFLOAD;
        cr_assert(got == overrides[i].expected || auto_found_gpu, "TOPK_BACKEND=%s over a %s request ran %s",
                  overrides[i].value, backend_label(overrides[i].requested), backend_label(got));
        topk_ctx_free(ctx);
    }
}

Test(environment, bad_tuning_values)
{
    expect_bad_env("TOPK_THREADS", "abc");
    expect_bad_env("TOPK_THREADS", "4abc");
    expect_bad_env("TOPK_THREADS", "-2");
    expect_bad_env("TOPK_TEAMS_PER_ROW", "x1");
    expect_bad_env("TOPK_CHUNK", "1.5");
}

Test(environment, tuning_values_reach_the_context)
{
    static const struct {
        const char *name, *value;
        topk_param param;
        int64_t expected;
    } tunings[] = {
        {"TOPK_THREADS", "3", TOPK_PARAM_THREADS, 3},
        {"TOPK_TEAMS_PER_ROW", "4", TOPK_PARAM_TEAMS_PER_ROW, 4},
        {"TOPK_CHUNK", "4096", TOPK_PARAM_CHUNK, 4096},
    };
    for (size_t i = 0; i < sizeof tunings / sizeof tunings[0]; i++) {
        topk_ctx *ctx;
        int64_t value = -1;
        cr_assert(create_with(tunings[i].name, tunings[i].value, TOPK_BACKEND_CPU, &ctx) == TOPK_OK);
        cr_assert(topk_ctx_get_param(ctx, tunings[i].param, &value) == TOPK_OK);
        cr_assert(value == tunings[i].expected, "%s=%s: parameter reads %lld", tunings[i].name, tunings[i].value,
                  (long long)value);
        topk_ctx_free(ctx);
    }
}

Test(environment, defaults_are_zero)
{
    topk_ctx *ctx;
    cr_assert(topk_ctx_create(&ctx, TOPK_BACKEND_CPU) == TOPK_OK);
    for (int p = TOPK_PARAM_THREADS; p <= TOPK_PARAM_CHUNK; p++) {
        int64_t value = -1;
        cr_assert(topk_ctx_get_param(ctx, (topk_param)p, &value) == TOPK_OK);
        cr_assert(value == 0, "parameter %d defaults to %lld, not 0 (choose for me)", p, (long long)value);
    }
    topk_ctx_free(ctx);
}
