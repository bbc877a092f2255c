// The cn_host_api table handed to one plugin: C function pointers that forward to PluginServices.
#pragma once

#include <connector/sdk.h>

#include <string>

#include "plugins/PluginServices.hpp"

namespace connector::plugins {

// One table per loaded plugin, so every call arrives tagged with that plugin's id. The table
// must stay at the same address until the plugin's shutdown returns (the plugin keeps the
// pointer), hence neither copyable nor movable: hold it by unique_ptr.
//
// No exception crosses back into the plugin: each trampoline catches everything, logs it and
// returns an error code. alloc/free are malloc/free, the one allocator both sides share.
class HostTable {
 public:
  HostTable(PluginServices &services, std::string plugin_id);
  HostTable(const HostTable &) = delete;
  HostTable &operator=(const HostTable &) = delete;

  const cn_host_api *api() const { return &api_; }
  const std::string &plugin_id() const { return plugin_id_; }
  PluginServices &services() const { return services_; }

 private:
  PluginServices &services_;
  std::string plugin_id_;
  cn_host_api api_{};
};

}  // namespace connector::plugins
