/* See json.h. */
#include "cli/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] < 0x80                    ? 1
               : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
               : p[0] >= 0xe0 && p[0] <= 0xef ? 3
               : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong three-byte forms, surrogates and code points above U+10FFFF. */
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

void cli_json_str(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
        } else if (*p == '"' || *p == '\\') {
            fprintf(f, "\\%c", *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p++);
        } else {
            fwrite(p, 1, n, f);
            p += n;
        }
    }
    fputc('"', f);
}

/* "NAME:LINE:COL" or "NAME:LINE": the numbers split off the end of where. */
static void split_position(char *where, long *line, long *col)
{
    for (int i = 0; i < 2; i++) {
        char *c = strrchr(where, ':');
        if (c == NULL || c[1] == '\0' || strspn(c + 1, "0123456789") != strlen(c + 1))
            return;
        long v = strtol(c + 1, NULL, 10);
        *c = '\0';
        if (i == 0) {
            *line = v;
        } else {
            *col = *line;
            *line = v;
        }
    }
}

void cli_json_diag(FILE *f, const char *msg)
{
    char *where = NULL, *file = NULL, *flag = NULL;
    const char *message = msg;
    long line = 0, col = 0;
    const char *sep = strstr(msg, ": ");
    if (sep != NULL && sep > msg && (where = strndup(msg, (size_t)(sep - msg))) != NULL) {
        message = sep + 2;
        if (strncmp(where, "--", 2) == 0)
            flag = where;
        else if (strncmp(where, "hosts file ", 11) == 0)
            file = where + 11;
        else if (strchr(where, ' ') == NULL && strcmp(where, "policy") != 0) {
            split_position(where, &line, &col);
            file = where;
        } else
            message = msg; /* not a place: the whole line is the message */
    }
    fputs("{\"text\": ", f);
    cli_json_str(f, msg);
    fputs(", \"file\": ", f);
    cli_json_str(f, file);
    fputs(line ? ", \"line\": " : ", \"line\": null", f);
    if (line)
        fprintf(f, "%ld", line);
    fputs(col ? ", \"col\": " : ", \"col\": null", f);
    if (col)
        fprintf(f, "%ld", col);
    fputs(", \"flag\": ", f);
    cli_json_str(f, flag);
    fputs(", \"message\": ", f);
    cli_json_str(f, message);
    fputc('}', f);
    free(where);
}
