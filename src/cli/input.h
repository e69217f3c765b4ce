/*
 * input.h - what the CLI reads and writes locally: passphrases, PEM files,
 * paths for the server, and new files that must not clobber anything.
 *
 * A passphrase comes from stdin or a file, never from argv or the
 * environment, where other users and /proc/PID/{cmdline,environ} see it. It
 * is read with read(2) straight into secret memory (stdio would keep a copy
 * in its buffer) and wiped after use.
 */
#ifndef VMSEAL_CLI_INPUT_H
#define VMSEAL_CLI_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/result.h"

#define CLI_PASSPHRASE_MAX 1024

/* Takes a passphrase out of len bytes of text: one line, a final "\n" or
 * "\r\n" stripped. Refuses (ERR_INVALID_ARG, with a detail) an empty one, a
 * second line, a NUL byte and more than CLI_PASSPHRASE_MAX bytes. Appends it
 * to out, which should be a secret buffer. */
RESULT cli_passphrase_from_text(const uint8_t *data, size_t len, struct buf *out)
    __attribute__((nonnull(3)));

/* Reads a passphrase into *out (allocated here, secret; the caller
 * buf_free's it): from the first line of file when file is not NULL, else
 * from stdin, one line. When stdin is a terminal the prompt goes to stderr
 * with echo off and, with confirm, the passphrase is asked twice. */
RESULT cli_read_passphrase(const char *file, const char *prompt, bool confirm, struct buf *out)
    __attribute__((nonnull(2, 4)));

/* Reads a one-line secret (a password, an API token) from path into *out
 * (allocated here, secret; the caller buf_free's it): one trailing "\n"
 * (or "\r\n") is stripped, nothing else. Refuses, with a detail naming
 * `what` and the file: an empty one, a second line, a NUL byte and more
 * than max bytes. */
RESULT cli_read_secret_file(const char *path, const char *what, size_t max, struct buf *out)
    __attribute__((nonnull));

/* Reads a PEM file (at most limit bytes) into *out (allocated here; secret
 * when secret is true). It must be text with a "-----BEGIN " line. */
RESULT cli_read_pem(const char *path, size_t limit, bool secret, struct buf *out)
    __attribute__((nonnull));

/* Writes path as an absolute path into out: unchanged when it starts with
 * '/', else cwd + "/" + path (cwd NULL: the current directory), with any
 * leading "./" dropped. Symbolic links are not resolved: the server
 * resolves the path it is given. */
RESULT cli_path_absolute(const char *cwd, const char *path, char *out, size_t size)
    __attribute__((nonnull(2, 3)));

/* Creates path for writing, mode 0600, refusing to follow a symbolic link
 * or to replace anything (O_EXCL): ERR_EXISTS if it exists. */
RESULT cli_file_create(const char *path, int *fd) __attribute__((nonnull));

/* Writes len bytes to fd, fsyncs it and closes it (also on failure), then
 * fsyncs path's directory. */
RESULT cli_file_finish(const char *path, int fd, const void *data, size_t len)
    __attribute__((nonnull(1)));

#endif
