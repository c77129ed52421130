/*
 * The small informational functions: the linked library's version matches the header it was built
 * against, and dtype sizes and backend names are right, with the documented answer for unknown values.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "topk.h"

Test(api_info, version)
{
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", TOPK_VERSION_MAJOR, TOPK_VERSION_MINOR, TOPK_VERSION_PATCH);
    cr_assert_eq(topk_version_number(), (unsigned)TOPK_VERSION_NUMBER);
    cr_assert_str_eq(topk_version_string(), expected);
    cr_assert_eq(TOPK_VERSION_NUMBER, TOPK_VERSION_MAJOR * 10000 + TOPK_VERSION_MINOR * 100 + TOPK_VERSION_PATCH);
}

Test(api_info, dtype_size)
{
    cr_assert_eq(topk_dtype_size(TOPK_F32), 4);
    cr_assert_eq(topk_dtype_size(TOPK_F16), 2);
    cr_assert_eq(topk_dtype_size(TOPK_BF16), 2);
    cr_assert_eq(topk_dtype_size((topk_dtype)3), 0);
    cr_assert_eq(topk_dtype_size((topk_dtype)7), 0);
    cr_assert_eq(topk_dtype_size((topk_dtype)-1), 0);
}

Test(api_info, backend_name)
{
    cr_assert_str_eq(topk_backend_name(TOPK_BACKEND_AUTO), "auto");
    cr_assert_str_eq(topk_backend_name(TOPK_BACKEND_CPU), "cpu");
    cr_assert_str_eq(topk_backend_name(TOPK_BACKEND_OFFLOAD), "offload");
    cr_assert_str_eq(topk_backend_name(TOPK_BACKEND_REFERENCE), "reference");
    cr_assert_null(topk_backend_name((topk_backend)4));
    cr_assert_null(topk_backend_name((topk_backend)9));
    cr_assert_null(topk_backend_name((topk_backend)-1));
}
