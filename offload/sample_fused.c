/*
 * topk_gpu_sample_top: topk_sample for batches with top-k lists, as the selection kernel with a
 * sampling root. ONE target region per call.
 *
 * The big idea: a top-k sampler is a top-k selection followed by a few dozen multiplications, so it
 * runs the selection kernel's teams and merge tree (rows.h) unchanged, with k = the longest list any
 * row needs (sample_list_length: top_k, or 1 for a greedy row). Where a selection would write the
 * row's k best, the team that completes a row's root instead places the row's own top n best first (as
 * sampling composites), its threads weigh one entry each, and one thread draws (sample_math.h: the
 * steps of sample_from_list, which the cpu backend runs on topk_cpu_select's output, so the draws
 * agree bit for bit). Every team of the row reads a chunk at full memory bandwidth, instead of one
 * team reading the row again per search pass. The list and its weights live in the selection buffer's
 * unused tail, in team memory.
 *
 * A row that cannot be served by a list (no top-k filter, a top_k above SAMPLE_LIST, or a list whose
 * first entry is a NaN: the library's order ranks NaN first, sampling ranks it as -inf) is sampled the
 * whole-row way by its root team (sample_team_draw_row, as sample_gpu.c does), in team memory shared with
 * the selection's: the selection is done with it by then, and the team restarts afterwards.
 *
 * A call with one set of parameters for every row passes them as scalars; per-row parameters are read
 * from device memory: the caller's (TOPK_DEVICE_POINTERS; the root checks them, and a row whose list
 * would be longer than the selection's k goes the whole-row way) or a copy of the host's.
 */
#include "gpu.h"
#include "launcher.h"
#include "plan.h"
#include "rows.h"
#include "sample.h"
#include "sample_params.h"
#include "sample_team.h"

/* A team's shared memory: the selection's while it selects, the whole-row sampler's after. */
typedef union fused_mem {
    team_mem select;
    sample_mem sample;
} fused_mem;

#pragma omp declare target

/* The sampling composite of selection composite c of a row (the same column; NaN ranks as -inf). */
TOPK_INLINE uint64_t sampling_composite(const char *rowp, int dtype, uint64_t c)
{
    int64_t column = topk_composite_column(c);
    return topk_composite(sample_key(dtype, sample_bits_at(rowp, dtype, column)), column);
}

/* Where the root keeps a row's list and its weights: in the selection buffer, past the SAMPLE_LIST
 * entries the root's candidates (and their sort) occupy. */
_Static_assert(TOPK_CAP >= 3 * SAMPLE_LIST && TOPK_SMEM_K >= SAMPLE_LIST, "the root's list must fit team memory");
_Static_assert(sizeof(sample_mem) <= SAMPLE_LIST * sizeof(uint64_t), "the logprobs' team memory must leave the root's list be");
_Static_assert(TOPK_TEAM_THREADS_MOST <= SAMPLE_TEAM_MAX, "the planner's teams must fit the whole-row sampler's arrays");

/* The root of row `row`: s->buf[0..kept) holds its best k (unordered). Writes the row's token (and
 * probability): from its top-k list when it has one that does not start with a NaN; for a row without a
 * top-k filter (top-p, min-p) and `nucleus` on, from its best `kept` when its kept set lies inside them
 * (sample_team_nucleus); else the whole-row way. Then its logprobs, the top ones from the list when it holds
 * them (the list is built that long: the call's k is at least the top logprobs' count), in team memory that
 * leaves the list be. */
TOPK_INLINE void sample_root(team *t, selection *s, uint32_t kept, fused_mem *m, int dtype, const char *rowp,
                             int64_t vocab, int64_t row, sample_row rp, uint64_t random, int64_t *tokens, float *probs,
                             sample_logprobs lp, bool nucleus)
{
    if (!sample_row_valid(rp, vocab, true)) { /* parameters from device memory, out of range (topk.h) */
        if (t->tid == 0) {
            tokens[row] = -1;
            if (probs) probs[row] = __builtin_nanf("");
            sample_logprobs_invalid(lp, row);
        }
        return;
    }
    /* a list longer than the selection's (device parameters above the caller's bound): the whole row */
    int64_t n = sample_list_length(rp, vocab, SAMPLE_LIST), top = lp.top_n < vocab ? lp.top_n : vocab;
    if (n > kept) n = 0;
    /* a nucleus list: the whole selection, at least 2 entries unless it is the whole row */
    int64_t tried = nucleus && !n ? sample_nucleus_length(rp, vocab, kept) : 0;
    if (tried < 2 && tried != vocab) tried = 0;
    int64_t built = n ? n : tried;
    int64_t listed = built && top > built && top <= kept ? top : built; /* entries the list holds */
    bool by_list = false, list_ok = false, logprobs = sample_logprobs_wanted(lp);
    sample_pick pick = {0, 1.0f};
    uint64_t *list = s->buf + SAMPLE_LIST, *w = s->buf + 2 * SAMPLE_LIST;
    sample_team st = {&m->sample, t->tid, t->nt};
    sample_view v = {.row = rowp, .dtype = dtype, .kind = SAMPLE_LOGITS, .vocab = vocab};
    if (built > 0) {
        /* Always sorted, never placed by rank as write_row does for short lists: with rank placement here,
         * the fp32 kernel built by clang 19.1.7 + ptxas 12.4 left holes in the list on the H100 (memcheck:
         * odd threads read the row at column 2^32 - 1 from a zero entry; offload/NOTES.md, run 33). At
         * k = 50 the sorting library timed like the one before it, in separate calls (not a same-run A/B). */
        team_sort(t, s->buf, kept);
        for (int64_t j = t->tid; j < listed; j += t->nt) list[j] = sampling_composite(rowp, dtype, s->buf[j]);
        team_barrier();
        /* Every thread reads the same best, so all take the same way without a broadcast. */
        list_ok = !sample_bits_are_nan(dtype, sample_bits_at(rowp, dtype, topk_composite_column(list[0])));
        if (list_ok && n) {
            sample_scale sc;
            by_list = true;
            pick.token = topk_composite_column(list[0]);
            if (sample_list_scale(rowp, dtype, vocab, list, n, rp, &sc)) {
                for (int64_t j = t->tid; j < n; j += t->nt) w[j] = sample_list_weight(rowp, dtype, sc, rp, list[j]);
                team_barrier();
                if (t->tid == 0) pick = sample_list_draw(list, w, n, rp, random);
            }
            /* no barrier after: the next item's selection_start holds every thread until thread 0 drew */
        } else if (list_ok) {
            /* Its pass over the row for the whole row's mass uses the whole-row sampler's team memory, below
             * the list; every thread gets the same answer, so all take the same way. */
            by_list = sample_team_nucleus(st, v, list, w, tried, rp, random, &pick);
        } else {
            team_barrier(); /* the list is read before the whole-row sampler writes over it */
        }
    }
    if (!by_list) pick = sample_team_draw_row(st, v, rp, random, 0);
    if (t->tid == 0) {
        tokens[row] = pick.token;
        if (probs) probs[row] = pick.prob;
    }
    /* Only thread 0 has a list's pick, and only it reads it; the list stays valid when the row went the
     * whole-row way after a nucleus list (the whole-row sampler's memory lies below it). */
    if (logprobs) sample_team_logprobs(st, v, rp, list, list_ok ? listed : 0, pick, lp, row);
    /* the whole-row sampler (and the nucleus's mass pass) wrote over the selection's histograms */
    if (!by_list || logprobs || tried) team_start(t, &m->select);
}

/* What every thread of every team runs (the selection's topk_run_team with sample_root at the root).
 * arrays: the per-row parameters in device memory, or NULL where `every` serves every row. */
TOPK_INLINE void sample_top_team(fused_mem *m, int kind, int dtype, const char *input TOPK_PLAN_PARAMS,
                                 sample_arrays arrays, sample_row every, uint64_t seed, uint64_t offset,
                                 const uint64_t *seeds, const uint64_t *offsets, int64_t *tokens, float *probs,
                                 sample_logprobs lp, bool nucleus)
{
    topk_plan p;
    team t;
    selection s;
    team_setup(&m->select, &t, &s, &p TOPK_PLAN_ARGS, 0);
    int64_t items = p.batch * p.chunks, row;
    uint32_t kept;
    for (int64_t item = omp_get_team_num(); item < items; item += omp_get_num_teams())
        if (climb_item(&t, &s, &p, kind, input, item, 0, &row, &kept))
            sample_root(&t, &s, kept, m, dtype, input + row * p.row_stride * p.elem, p.vocab, row,
                        sample_row_at(arrays, every, row), sample_row_random(seed, offset, seeds, offsets, row),
                        tokens, probs, lp, nucleus);
}

#pragma omp end declare target

#define SAMPLE_TOP_BODY(KIND)                                                                            \
    {                                                                                                    \
        fused_mem shared;                                                                                \
        IN_TEAM_MEMORY                                                                                   \
        _Pragma("omp parallel num_threads(threads)")                                                     \
        sample_top_team(&shared, KIND, dtype, input TOPK_PLAN_ARGS,                                     \
                        (sample_arrays){temperatures, top_ks, top_ps, min_ps},                           \
                        (sample_row){temperature, top_p, min_p, top_k}, seed, offset, seeds, offsets,    \
                        tokens, probs, SAMPLE_LOGPROBS_VALUE, nucleus);                                  \
    }

#define ON_DEVICE_POINTERS(KIND)                                                                         \
    _Pragma("omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
             is_device_ptr(input, tokens, probs, lists, wide, tickets, temperatures, top_ks, top_ps, min_ps, \
                           seeds, offsets, SAMPLE_LOGPROBS_POINTERS)")                                   \
    SAMPLE_TOP_BODY(KIND)

#define ON_HOST_POINTERS(KIND)                                                                           \
    _Pragma("omp target teams num_teams(teams) thread_limit(threads) device(device) if(target : on_device) \
             is_device_ptr(lists, wide, tickets, temperatures, top_ks, top_ps, min_ps, seeds, offsets)    \
             map(to : input[0 : in_bytes])                                                               \
             map(from : tokens[0 : batch], probs[0 : prob_count]) SAMPLE_LOGPROBS_MAP")                  \
    SAMPLE_TOP_BODY(KIND)

/* The launch's scalars: the plan's fields (TOPK_PLAN_LOCALS), and the call's (d: sample_params.h), all
 * by the names the regions capture. */
#define SAMPLE_TOP_LOCALS                                                                                \
    int teams = (int)plan->teams, threads = (int)plan->threads, device = gpu->device, dtype = (int)sp->dtype; \
    bool on_device = !gpu->on_host;                                                                      \
    TOPK_PLAN_LOCALS                                                                                     \
    const char *input = sp->input;                                                                       \
    uint64_t seed = sp->seed, offset = sp->offset;                                                       \
    int64_t *tokens = sp->out;                                                                           \
    float *probs = sp->probs;                                                                            \
    int nucleus = nucleus_on;                                                                            \
    SAMPLE_PARAM_LOCALS(d)                                                                               \
    SAMPLE_LOGPROBS_LOCALS(sp)                                                                           \
    (void)teams, (void)device, (void)on_device;

/* The regions on the caller's device memory, one per dtype in topk_dtype's order (BY_WAVE_KIND): the
 * stream launcher finds their kernels by this function's name. */
static void sample_top_on_device(const topk_plan *plan, const topk_gpu *gpu, const topk_sample_problem *sp,
                                 sample_device_params d, bool nucleus_on)
{
    SAMPLE_TOP_LOCALS
    BY_WAVE_KIND(sp->dtype, ON_DEVICE_POINTERS)
}

/* The same kernels on gpu->stream, through the stream launcher. */
static topk_status sample_top_on_stream(const topk_plan *plan, topk_gpu *gpu, const topk_sample_problem *sp,
                                        sample_device_params d, bool nucleus_on)
{
    SAMPLE_TOP_LOCALS
    topk_kernel_arg args[] = {TOPK_KERNEL_ARG(threads), TOPK_KERNEL_ARG(dtype), TOPK_KERNEL_ARG(input)
                              TOPK_PLAN_KERNEL_ARGS, TOPK_KERNEL_ARG(temperatures), TOPK_KERNEL_ARG(top_ks),
                              TOPK_KERNEL_ARG(top_ps), TOPK_KERNEL_ARG(min_ps), TOPK_KERNEL_ARG_F32(temperature),
                              TOPK_KERNEL_ARG_F32(top_p), TOPK_KERNEL_ARG_F32(min_p), TOPK_KERNEL_ARG(top_k),
                              TOPK_KERNEL_ARG(seed), TOPK_KERNEL_ARG(offset), TOPK_KERNEL_ARG(seeds),
                              TOPK_KERNEL_ARG(offsets), TOPK_KERNEL_ARG(tokens), TOPK_KERNEL_ARG(probs),
                              TOPK_KERNEL_ARG(lp_raw), TOPK_KERNEL_ARG(lp_processed), TOPK_KERNEL_ARG(top_n),
                              TOPK_KERNEL_ARG(top_tokens), TOPK_KERNEL_ARG(top_logprobs), TOPK_KERNEL_ARG(nucleus)};
    return topk_launch(gpu, "sample_top_on_device", dtype, plan->teams, plan->threads, args,
                       (int)(sizeof args / sizeof args[0]));
}

static void sample_top_mapped(const topk_plan *plan, const topk_gpu *gpu, const topk_sample_problem *sp,
                              sample_device_params d, bool nucleus_on)
{
    SAMPLE_TOP_LOCALS
    int64_t in_bytes = ((batch - 1) * row_stride + vocab) * plan->elem, prob_count = probs ? batch : 0;
    BY_WAVE_KIND(sp->dtype, ON_HOST_POINTERS)
}

topk_status topk_gpu_sample_top(topk_gpu *gpu, const topk_sample_problem *p, bool device_pointers, int64_t k,
                                int team_threads, bool nucleus)
{
    topk_problem selection = {.input = p->input, .dtype = p->dtype, .batch = p->batch, .vocab = p->vocab,
                              .row_stride = p->row_stride, .k = k};
    /* The root team may sample a row the whole-row way, whose per-thread arrays hold SAMPLE_TEAM_MAX
     * (src/common/sample_team.h): a larger TOPK_TEAM_THREADS serves the selection kernel, not this one. */
    if (team_threads > SAMPLE_TEAM_MAX) team_threads = SAMPLE_TEAM_MAX;
    topk_plan plan;
    topk_status s = topk_plan_make(&plan, &selection, 0, team_threads, 0, gpu->sm_count, gpu->on_host);
    if (s != TOPK_OK) return s;
    sample_uploads up = sample_uploads_of(p, device_pointers);
    pthread_mutex_lock(&gpu->lock);
    void *stream = device_pointers ? gpu->stream : NULL;
    topk_workspace *w;
    s = topk_gpu_workspace(gpu, stream, plan.list_bytes + plan.wide_bytes + up.bytes, plan.ticket_bytes, &w);
    if (s == TOPK_OK) {
        plan.lists = w->scratch;
        plan.wide = (uint64_t *)((char *)w->scratch + plan.list_bytes);
        plan.tickets = w->tickets;
        sample_device_params d;
        s = sample_upload(gpu, p, &up, (char *)w->scratch + plan.list_bytes + plan.wide_bytes, &d);
        if (s != TOPK_OK)
            ;
        else if (stream)
            s = sample_top_on_stream(&plan, gpu, p, d, nucleus);
        else if (device_pointers)
            sample_top_on_device(&plan, gpu, p, d, nucleus);
        else
            sample_top_mapped(&plan, gpu, p, d, nucleus);
    }
    pthread_mutex_unlock(&gpu->lock);
    return s;
}
