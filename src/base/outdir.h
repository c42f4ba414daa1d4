/*
 * outdir.h: the output-folder rule every command that writes a result folder
 * follows (docs/rulings.md, "Output folders"). DIR/settings.json holds the
 * settings object that decides the result ("settings"), its hash
 * ("settings_hash") and where it came from ("provenance"). A rerun into the
 * same folder with the same settings resumes (or is a no-op when finished);
 * with other settings it is refused, naming the first key that differs, in
 * one wording for every command:
 *
 *   DIR holds a KIND with other settings: settings.KEY is A there but B now;
 *   use another output folder, or the same settings to resume
 */
#ifndef CLENS_BASE_OUTDIR_H
#define CLENS_BASE_OUTDIR_H

#include <jansson.h>

#include "clens.h"

/* The first top-level key whose value differs between objects a and b (one
 * side may lack it), or NULL when equal; the key is owned by a or b. */
const char *clens_json_first_difference(const json_t *a, const json_t *b);

/* A value as compact JSON for a message, cut to about 120 bytes, "(absent)"
 * for NULL (malloc'd, caller frees; NULL only when out of memory). */
char *clens_json_brief(const json_t *v);

/* 1 if provenance key `key` identifies the setup (a resume must match it):
 * every key except "host_cpu", which may change when a run moves machine. */
int clens_provenance_key_is_identity(const char *key);

/* The refusal above (CLENS_E_STATE, returned): `what` names the differing
 * entry ("settings.n", "provenance.kernel"), was/now are its two values
 * (either NULL for absent). */
int clens_outdir_refuse(clens_error *err, const char *dir, const char *kind, const char *what, const json_t *was,
                        const json_t *now);
/* The same with the two values already written as text. */
int clens_outdir_refuse_text(clens_error *err, const char *dir, const char *kind, const char *what, const char *was,
                             const char *now);

/* Checks DIR/settings.json against this run's `settings` object, then
 * against `hash` (NULL: not compared) and the identity keys of `provenance`
 * (NULL: not compared). *found = 0 when there is no settings.json (nothing
 * checked), 1 when it matches. Other settings: the refusal above; a
 * settings.json that cannot be read or has no "settings" object:
 * CLENS_E_IO / CLENS_E_FORMAT naming it. */
int clens_outdir_check(const char *dir, const char *kind, const json_t *settings, const char *hash,
                       const json_t *provenance, int *found, clens_error *err);

#endif
