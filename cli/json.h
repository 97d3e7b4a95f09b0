#ifndef AWF_CLI_JSON_H
#define AWF_CLI_JSON_H

/* The small JSON writer behind `check --json` and `explain --json` (README "JSON output"):
 * strings escaped so the output is always valid UTF-8 JSON, and a diagnostic's place split into
 * fields. */

#include <stdio.h>

/* s as a JSON string, or null when s is NULL. Control characters are \u-escaped; a byte that
 * is not part of valid UTF-8 becomes U+FFFD, so no input byte breaks the document. */
void cli_json_str(FILE *f, const char *s);

/* One diagnostic as an object: {"text": msg, "file": F, "line": L, "col": C, "flag": G,
 * "message": M}. msg is what the text output prints after "awf-proxy: ": "FILE:LINE:COL: M",
 * "FILE:LINE: M", "FILE: M", "--flag: M", "hosts file PATH: M" or a bare M; fields that do not
 * apply are null. */
void cli_json_diag(FILE *f, const char *msg);

#endif
