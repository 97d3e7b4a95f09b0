#ifndef AWF_COMMON_ERROR_H
#define AWF_COMMON_ERROR_H

/* One error rule for the whole project: functions return 0 on success or a negative code.
 * Negative errno values pass through unchanged; our own codes live below AWF_E_BASE so they
 * never collide with errno. Each code has a name, a message, and how it shows to a client. */

#define AWF_E_BASE (-10000)

/* X(name, value, message) */
#define AWF_ERRNO_MAP(X)                                                                           \
    X(POLICY_SYNTAX, AWF_E_BASE - 1, "policy syntax error")                                        \
    X(POLICY_INVALID, AWF_E_BASE - 2, "invalid policy entry")                                      \
    X(DENIED, AWF_E_BASE - 3, "denied by policy")                                                  \
    X(ADDR_DENIED, AWF_E_BASE - 4, "address denied by policy")                                     \
    X(DNS_FAIL, AWF_E_BASE - 5, "name does not resolve")                                           \
    X(DNS_TIMEOUT, AWF_E_BASE - 6, "name lookup timed out")                                        \
    X(BAD_REQUEST, AWF_E_BASE - 7, "malformed request")                                            \
    X(TOO_BIG, AWF_E_BASE - 8, "request headers too large")                                        \
    X(TIMEOUT, AWF_E_BASE - 9, "timed out")                                                        \
    X(CANCELED, AWF_E_BASE - 10, "canceled")                                                       \
    X(LOGFORMAT, AWF_E_BASE - 11, "invalid logformat")                                             \
    X(USAGE, AWF_E_BASE - 12, "invalid usage")                                                     \
    X(LIMIT, AWF_E_BASE - 13, "limit reached")                                                     \
    X(NETFILTER, AWF_E_BASE - 14, "iptables-restore failed")                                       \
    X(NOT_FILE, AWF_E_BASE - 15, "not a regular file")

enum awf_errno {
#define AWF_E_ENUM(name, val, msg) AWF_E_##name = (val),
    AWF_ERRNO_MAP(AWF_E_ENUM)
#undef AWF_E_ENUM
};

/* Name ("AWF_E_DENIED", "ECONNREFUSED") and message of any code, errno included. Static strings. */
const char *awf_strerror(int err);
const char *awf_err_name(int err);

#endif
