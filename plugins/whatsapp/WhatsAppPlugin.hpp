// What the WhatsApp plugin makes of the bridge's output, reachable without a bridge process: the
// plugin's own line reader, and its reading of the answers it acts on. The plugin uses exactly
// these; the protocol's fuzz target (fuzz/BridgeFuzz.cpp) and tests drive them with lines of
// their own.
#pragma once

#include "BridgeProcess.hpp"

#include <connector/sdk.hpp>

#include <memory>
#include <optional>
#include <string>

namespace connector::whatsapp {

// A bridge process wired to `plugin` (the instance this library's entry point made) as the
// plugin wires its own, not started: bytes given to its feed() are read as the bridge's stdout,
// events going to the plugin's handling and dropped lines to the host's log.
std::unique_ptr<BridgeProcess> bridge_reader(sdk::Plugin &plugin);

// The answer to `hello` (as request() returned it) from the bridge in `dir`: the Baileys version
// it runs, or why the channel cannot start (a refusal, or another protocol).
sdk::Result<std::string> read_hello(const sdk::Result<Json> &hello, const std::string &dir);

// What send() answers for the bridge's answer to a send to `to`.
Json sent_answer(const Json &answer, const std::string &to);

// For the outcome of `stop` with `logout`: the detail of a logout WhatsApp did not confirm, or
// nullopt when it did (or there was no linked device).
std::optional<std::string> logout_unconfirmed(const sdk::Result<Json> &stopped);

}  // namespace connector::whatsapp
