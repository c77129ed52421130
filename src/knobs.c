/*
 * The tuning knobs (knobs.h).
 */
#include "knobs.h"

#include <string.h>

#include "sizes.h"

static const topk_knob knobs[] = {
    {TOPK_PARAM_THREADS, "TOPK_THREADS", "threads", "cpu", 0, 4096, 1},
    {TOPK_PARAM_DEVICE, NULL, NULL, "offload", -1, 4096, 1},
    {TOPK_PARAM_TEAMS_PER_ROW, "TOPK_TEAMS_PER_ROW", "teams_per_row", "offload", 0, TOPK_LAUNCH_TEAMS_MOST, 1},
    {TOPK_PARAM_CHUNK, "TOPK_CHUNK", "chunk", "cpu", 0, (int64_t)1 << 40, 1},
    {TOPK_PARAM_PROFILE, "TOPK_PROFILE", NULL, NULL, 0, 1, 1},
    /* threads of a GPU team: a multiple of a warp up to CUDA's block limit (the planner's own choice stays
     * at most TOPK_TEAM_THREADS_MOST; the fused sampler caps any choice at its arrays' size) */
    {TOPK_PARAM_TEAM_THREADS, "TOPK_TEAM_THREADS", NULL, "offload", 32, 1024, 32},
    /* when a chunk's team compacts its buffer and raises its floor (plan.c: topk_plan_shrink_at) */
    {TOPK_PARAM_SHRINK_AT, "TOPK_SHRINK_AT", "shrink_at", "offload", 1, TOPK_CAP, 1},
    /* nucleus lists of topk_sample: 1 turns them off, else up to SAMPLE_LIST (src/common/sample_team.h) */
    {TOPK_PARAM_SAMPLE_LIST, "TOPK_SAMPLE_LIST", NULL, NULL, 1, 1024, 1},
};

const topk_knob *topk_knob_of(topk_param param)
{
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (knobs[i].param == param) return &knobs[i];
    return NULL;
}

const topk_knob *topk_knob_in_tables(const char *name)
{
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++)
        if (knobs[i].table && !strcmp(knobs[i].table, name)) return &knobs[i];
    return NULL;
}

bool topk_knob_allows(const topk_knob *knob, int64_t value)
{
    return value == 0 || (value >= knob->least && value <= knob->most && value % knob->step == 0);
}
