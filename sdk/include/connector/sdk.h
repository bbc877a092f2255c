/*
 * Connector SDK: the C ABI between the connector host and a channel plugin.
 *
 * A plugin is a shared library that exports two symbols:
 *
 *   - an ABI marker, `connector_sdk_abi_v<MAJOR>_<MINOR>`, whose name alone tells the host which
 *     SDK the plugin was built against. The host reads it from the file without loading the
 *     library (no static constructor of the plugin runs before the version is accepted);
 *   - the entry point `connector_plugin_entry` (type cn_plugin_entry_fn).
 *
 * Plugin authors normally do not touch this header directly: <connector/sdk.hpp> wraps it in a
 * header-only C++ layer and declares both symbols through CONNECTOR_PLUGIN(Class).
 *
 * Compatibility rules
 *   - The host accepts a plugin whose MAJOR equals its own and whose MINOR is not newer.
 *   - Every struct that crosses the boundary starts with `struct_size`. New members are only ever
 *     appended; a reader must check `struct_size` before touching a member added in a later minor
 *     version.
 *
 * Data conventions
 *   - Strings are UTF-8 and NUL-terminated.
 *   - Structured values (descriptor, connect values, events, messages) are JSON documents whose
 *     schema is described next to each call and in docs/sdk.md. JSON keeps the ABI free of C++
 *     types, so a plugin built with another compiler or standard library still loads.
 *   - Every pointer passed into a call is borrowed for the duration of that call only; the callee
 *     copies what it wants to keep.
 *   - Memory handed from one side to the other (the `char **out` parameters) is allocated with
 *     cn_host_api.alloc and released by the receiver with cn_host_api.free: one allocator serves
 *     both sides.
 *   - No C++ exception may cross this boundary in either direction.
 */
#ifndef CONNECTOR_SDK_H
#define CONNECTOR_SDK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The SDK ABI this header describes. */
#define CN_SDK_ABI_MAJOR 1
#define CN_SDK_ABI_MINOR 1

/* Name of the entry point every plugin exports. */
#define CN_PLUGIN_ENTRY_SYMBOL "connector_plugin_entry"

/* Prefix of the exported ABI marker; the full name is e.g. connector_sdk_abi_v1_0. */
#define CN_SDK_ABI_SYMBOL_PREFIX "connector_sdk_abi_v"

/*
 * Declares the ABI marker for the version this header describes. Put it in exactly one source
 * file of the plugin (CONNECTOR_PLUGIN in sdk.hpp already does).
 */
#define CN_ABI_MARKER_NAME_(major, minor) connector_sdk_abi_v##major##_##minor
#define CN_ABI_MARKER_NAME(major, minor) CN_ABI_MARKER_NAME_(major, minor)
#ifdef __cplusplus
#define CN_EXTERN_C_ extern "C"
#else
#define CN_EXTERN_C_ extern
#endif
#define CN_DECLARE_ABI_MARKER()                                                                  \
  CN_EXTERN_C_ __attribute__((visibility("default"), used)) const char CN_ABI_MARKER_NAME(       \
      CN_SDK_ABI_MAJOR, CN_SDK_ABI_MINOR)[] = "connector-sdk"

/* Result codes of every call that can fail. */
typedef enum cn_result {
  CN_OK = 0,
  CN_ERR_INVALID_ARGUMENT = 1, /* the values given are malformed or incomplete */
  CN_ERR_NOT_FOUND = 2,        /* unknown account, key, message or chat */
  CN_ERR_UNSUPPORTED = 3,      /* the plugin does not offer this verb (see capabilities) */
  CN_ERR_STATE = 4,            /* not possible in the account's current state */
  CN_ERR_AUTH = 5,             /* credentials refused */
  CN_ERR_NETWORK = 6,          /* the remote end could not be reached or dropped the connection */
  CN_ERR_STORAGE = 7,          /* the host could not read or write durable storage */
  CN_ERR_INTERNAL = 8          /* anything else; the message says what */
} cn_result;

/* Log levels for cn_host_api.log. INFO is for lifecycle only; details belong to DEBUG. */
typedef enum cn_log_level {
  CN_LOG_DEBUG = 0,
  CN_LOG_INFO = 1,
  CN_LOG_WARN = 2,
  CN_LOG_ERROR = 3
} cn_log_level;

/*
 * Services the host offers a plugin. The host fills this table in before calling the entry point;
 * the table and `host` stay valid until cn_plugin_api.shutdown returns.
 *
 * Threading: every function here is thread-safe and may be called from any thread the plugin
 * owns, including from inside a verb. None of them blocks on the network; the storage calls do
 * synchronous local I/O (SQLite, files) and return once the data is durable.
 */
typedef struct cn_host_api {
  size_t struct_size;
  void *host; /* opaque; pass back as the first argument of every call below */

  /* Allocation shared by both sides: every `char **out` value is allocated with `alloc`. */
  void *(*alloc)(size_t size);
  void (*free)(void *ptr);

  /*
   * Writes one log line, tagged by the host with the plugin id and the account (account_id may
   * be NULL for plugin-wide lines). Known secret values of the account are masked before the
   * line is written, but a plugin must still never pass secrets here.
   */
  void (*log)(void *host, const char *account_id, cn_log_level level, const char *message);

  /*
   * Hands the host one event of an account, as a JSON object with a "type" member:
   *
   *   {"type":"status", "state":"disconnected|connecting|awaiting_qr|connected|error|
   *            reauth_needed", "account":"shown name, e.g. the address", "detail":"reason"}
   *   {"type":"qr", "payload":"text to encode", "expires_at":<unix ms>}
   *   {"type":"qr_expired"}
   *   {"type":"pairing_code", "code":"ABCD-EFGH", "expires_at":<unix ms>}
   *   {"type":"message", ... see CN_MESSAGE_SCHEMA in docs/sdk.md ...}
   *   {"type":"messages", "messages":[<message event>, ...]}   up to 1000, stored in one
   *            transaction (all or none); an older host answers CN_ERR_INVALID_ARGUMENT
   *   {"type":"delivery", "external_id":"...", "status":"sent|delivered|read|failed",
   *            "detail":"..."}
   *   {"type":"progress", "phase":"initial_sync", "done":<n>, "total":<n>}
   *   {"type":"log", "level":"info|warn|error", "text":"entry for the integration log"}
   *
   * Inbound messages are durable when emit returns CN_OK: a plugin acknowledges a message to its
   * source (advances sync state, sends a receipt) only after that. A message whose external_id
   * the account already has is accepted again without creating a duplicate.
   * The JSON is borrowed for the call. Returns CN_ERR_INVALID_ARGUMENT (with the reason logged)
   * when the event is malformed, CN_ERR_STORAGE when it could not be stored.
   */
  cn_result (*emit)(void *host, const char *account_id, const char *event_json);

  /*
   * Durable per-account key/value storage. Values marked secret are encrypted at rest and never
   * appear in the API or logs. `put` replaces the value atomically. `get` returns
   * CN_ERR_NOT_FOUND when the key is absent; otherwise *value (allocated with alloc, not
   * NUL-terminated unless the stored bytes were) and *size are set.
   */
  cn_result (*store_put)(void *host, const char *account_id, const char *key, const void *value,
                         size_t size, int secret);
  cn_result (*store_get)(void *host, const char *account_id, const char *key, char **value,
                         size_t *size);
  cn_result (*store_delete)(void *host, const char *account_id, const char *key);

  /*
   * Saves an attachment's bytes in the host's content-addressed attachment store and writes its
   * id (64 lowercase hex characters of SHA-256, NUL-terminated) into id_out[65]. The message
   * event then names the attachment by that id.
   */
  cn_result (*attachment_put)(void *host, const char *account_id, const void *data, size_t size,
                              char id_out[65]);

  /*
   * Writes into *path (allocated with alloc) the absolute path of a stored attachment, for a
   * plugin that sends it. The file is read-only and stays until the message is deleted.
   */
  cn_result (*attachment_path)(void *host, const char *attachment_id, char **path);
} cn_host_api;

/*
 * What a plugin offers the host. The plugin fills this table in from its entry point; it must
 * stay valid until shutdown returns.
 *
 * Threading: the host calls the verbs from its worker threads, never from its network thread, and
 * never two verbs of the same account at once; verbs of different accounts may run concurrently.
 * A verb may block for local work but should not wait on the network for long: connect returns as
 * soon as the attempt has started and reports the outcome through "status" events.
 *
 * Every verb returns a cn_result. On failure it may set *error to a message for the attendant
 * (allocated with cn_host_api.alloc; the host frees it). `error` may be NULL.
 */
typedef struct cn_plugin_api {
  size_t struct_size;
  void *plugin; /* opaque; passed back as the first argument of every verb */

  /*
   * The plugin's self-description, a JSON object valid until shutdown:
   *   {"id":"whatsapp", "name":{"en":"WhatsApp","pt-BR":"WhatsApp"}, "version":"1.2.0",
   *    "capabilities":["qr","pairing_code","form_login","oauth","send","media","receive"],
   *    "connect_fields":[{"name":"address","type":"email|text|password|select|number|checkbox",
   *        "label":{"en":"...","pt-BR":"..."}, "required":true, "secret":false,
   *        "choices":[{"value":"gmail","label":{"en":"Gmail","pt-BR":"Gmail"}}], "default":"..."}],
   *    "settings":[{"key":"media_limit_mb","type":"integer|number|string|boolean|list",
   *        "default":16, "description":"..."}]}
   */
  const char *descriptor_json;

  /*
   * Applies the admin's settings (a JSON object already checked by the host against the declared
   * settings, defaults filled in). Called once, before any other verb.
   */
  cn_result (*configure)(void *plugin, const char *settings_json, char **error);

  /*
   * Starts connecting an account. params_json is a JSON object:
   *   {"values":{...connect form values...}}  a first connect from the connection screen;
   *   {"resume":true}                          reconnect from stored credentials after a restart;
   *   {"oauth":{...}}                          the result of an OAuth flow (see oauth_start).
   * Secret values in "values" are the plugin's to store (as secret) or forget; the host keeps none.
   */
  cn_result (*connect)(void *plugin, const char *account_id, const char *params_json,
                       char **error);

  /* Closes the session. When `forget` is non-zero the account is being removed or logged out:
   * the plugin deletes its stored credentials too. */
  cn_result (*disconnect)(void *plugin, const char *account_id, int forget, char **error);

  /* Starts a new pairing after the previous QR expired (capability "qr"). */
  cn_result (*refresh_qr)(void *plugin, const char *account_id, char **error);

  /*
   * Writes the account's current status into *status_json, with the members of a "status" event
   * plus, while pairing, "qr":{"payload":"...","expires_at":<ms>}.
   */
  cn_result (*status)(void *plugin, const char *account_id, char **status_json, char **error);

  /*
   * Sends one message. message_json:
   *   {"to":"+5511987654321 | address | chat id", "cc":"...", "bcc":"...", "text":"...",
   *    "html":"...", "subject":"...", "case_id":123,
   *    "reply_to":{"external_id":"...","from":"...","subject":"...","link_keys":{...}},
   *    "attachments":[{"id":"<sha256>","name":"a.pdf","mime":"application/pdf"}]}
   * "reply_to" is the stored message this one answers (see docs/sdk.md, "Sending").
   * On success writes {"external_id":"...", "to":"resolved recipient", "status":"sent"} into
   * *result_json, plus "subject" when the channel changed the subject on the way out (the host
   * stores the one given there). Delivery updates arrive later as "delivery" events.
   */
  cn_result (*send)(void *plugin, const char *account_id, const char *message_json,
                    char **result_json, char **error);

  /*
   * Returns the link keys of a message (the JSON of a "message" event), as
   * {"phones":[],"whatsapp_ids":[],"emails":[],"subject_case_ids":[],"thread_refs":[]}: what the
   * case matcher may use to find the message's case. The host calls it for every message event
   * that carries no "link" member of its own, on the thread that emitted the event; it must not
   * block and must not call emit.
   */
  cn_result (*link)(void *plugin, const char *message_json, char **keys_json, char **error);

  /* Stops every session and releases the plugin. No verb runs during or after it. */
  void (*shutdown)(void *plugin);

  /* --- Since SDK 1.1: the host reads the members below only when struct_size covers them. --- */

  /*
   * Begins an OAuth authorization-code flow for an account (capability "oauth"). request_json:
   *   {"values":{...connect form values, checked like connect's...},
   *    "redirect_uri":"<public URL of the host>/api/v1/oauth/callback",
   *    "state":"<unguessable, single-use value chosen by the host>"}
   * The plugin keeps what it needs to finish the flow (PKCE verifier, provider) and writes
   * {"authorization_url":"https://..."} into *result_json; that URL must carry `state` and
   * `redirect_uri` unchanged. When the provider's redirect brings that state back, the host calls
   * connect with {"oauth":{"state":"...","code":"...","redirect_uri":"..."}} (or, when the
   * provider refused, {"oauth":{"state":"...","error":"...","error_description":"..."}}); the
   * host has then already checked that the state is known, unused and unexpired.
   * May be NULL (or outside struct_size): the host then answers that OAuth is not offered.
   */
  cn_result (*oauth_start)(void *plugin, const char *account_id, const char *request_json,
                           char **result_json, char **error);
} cn_plugin_api;

/*
 * The entry point. Fills in *api. `host` stays valid until api->shutdown returns. Returns CN_OK,
 * or another code with *error set (allocated with host->alloc) when the plugin cannot start.
 */
typedef cn_result (*cn_plugin_entry_fn)(const cn_host_api *host, cn_plugin_api *api, char **error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* CONNECTOR_SDK_H */
