// Unpacks winmail.dat (TNEF, Outlook's "rich text" wrapper) into the files it carries.
//
// Why a separate process: the two Debian TNEF readers are both GPL-2 (libytnef and the `tnef`
// program). Linking libytnef would put the plugin, and every host that loads it, under the GPL;
// running Debian's `tnef` program as its own process keeps the licences apart and also keeps a
// crash in the TNEF reader (hostile input) out of the host. Where `tnef` is not installed, or it
// fails, or the archive holds no files, winmail.dat is kept whole as before: nothing is lost.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "ParsedMail.hpp"

namespace connector::email {

// The files inside a TNEF archive (names sanitised, MIME types guessed from the extension), or
// nullopt when it cannot be unpacked here. At most `max_bytes` are unpacked in total.
std::optional<std::vector<MailAttachment>> unpack_winmail(std::string_view tnef,
                                                          size_t max_bytes = 100u << 20);

// True for a part that is a TNEF archive: its MIME type or the name Outlook gives it.
bool is_winmail(std::string_view mime, std::string_view file_name);

}  // namespace connector::email
