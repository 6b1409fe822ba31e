// The console's files (server/console/: HTML, CSS, JavaScript), compiled into ihsd by
// server/console/embed.cmake, so that ihsd serves them itself and nothing comes from elsewhere.
#ifndef IHS_SERVER_CONSOLE_ASSETS_H_
#define IHS_SERVER_CONSOLE_ASSETS_H_

#include "absl/strings/string_view.h"

namespace ihs::server {

struct ConsoleAsset {
  absl::string_view bytes;
  const char* content_type;
};

// The file served at `path` ("/index.html", "/console.js", ...), or null.
const ConsoleAsset* FindConsoleAsset(absl::string_view path);

}  // namespace ihs::server

#endif  // IHS_SERVER_CONSOLE_ASSETS_H_
