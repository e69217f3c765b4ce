/*
 * store.h - vmseald's management database: DATA_DIR/vmseald.db (SQLite, WAL,
 * synchronous=FULL, mode 0600). Users, tokens, roles, permissions, folders,
 * tasks and the host's encryption mode live here; VMs and their keys do not
 * (they stay in the VM directories and keys.json).
 *
 * One connection, one mutex: every module takes the connection with
 * store_lock and gives it back with store_unlock; statements are short.
 * Each module creates its own tables (CREATE TABLE IF NOT EXISTS) when it
 * opens, so the schema of a table lives next to the code that uses it.
 */
#ifndef VMSEAL_SERVER_STORE_H
#define VMSEAL_SERVER_STORE_H

#include <sqlite3.h>

#include "core/result.h"

struct store;

/* Opens (creating if missing) DATA_DIR/vmseald.db. */
RESULT store_open(const char *data_dir, struct store **out) __attribute__((nonnull));
void store_close(struct store **s);

/* The connection, with the store's mutex held until store_unlock. */
sqlite3 *store_lock(struct store *s) __attribute__((nonnull));
void store_unlock(struct store *s) __attribute__((nonnull));

/* Runs SQL text without results (schema, pragmas). Call with the lock held. */
RESULT store_exec(sqlite3 *db, const char *sql) __attribute__((nonnull));

/* Raises ERR_STORE with SQLite's message and what was being done. */
RESULT store_error(sqlite3 *db, const char *what) __attribute__((nonnull));

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK, with the lock held. */
RESULT store_begin(sqlite3 *db) __attribute__((nonnull));
RESULT store_commit(sqlite3 *db) __attribute__((nonnull));
void store_rollback(sqlite3 *db) __attribute__((nonnull));

#endif
