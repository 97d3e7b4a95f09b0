#include "common/error.h"

#include <errno.h>
#include <string.h>

const char *awf_strerror(int err)
{
    switch (err) {
#define AWF_E_MSG(name, val, msg)                                                                  \
    case val:                                                                                      \
        return msg;
        AWF_ERRNO_MAP(AWF_E_MSG)
#undef AWF_E_MSG
    default:
        break;
    }
    if (err < 0 && err > AWF_E_BASE)
        return strerror(-err);
    return err == 0 ? "success" : "unknown error";
}

const char *awf_err_name(int err)
{
    switch (err) {
#define AWF_E_NAME(name, val, msg)                                                                 \
    case val:                                                                                      \
        return "AWF_E_" #name;
        AWF_ERRNO_MAP(AWF_E_NAME)
#undef AWF_E_NAME
    default:
        break;
    }
    if (err < 0 && err > AWF_E_BASE) {
        const char *n = strerrorname_np(-err);
        return n ? n : "E?";
    }
    return err == 0 ? "OK" : "E?";
}
