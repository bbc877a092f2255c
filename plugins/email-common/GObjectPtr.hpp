// Ownership of GLib objects (GMime's messages, streams, parts): released with g_object_unref
// when they leave scope.
#pragma once

#include <glib-object.h>

#include <memory>

namespace connector::email {

struct GObjectUnref {
  void operator()(void *object) const {
    if (object != nullptr) g_object_unref(object);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

}  // namespace connector::email
