// A plain HTTP/1.1 client over a socket, for tests of ihsd's HTTP listener (server/http.h,
// server/console.h): one request per connection, as curl or a load balancer would send it.
#ifndef IHS_TESTS_INTEGRATION_HTTP_CLIENT_H_
#define IHS_TESTS_INTEGRATION_HTTP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ihs {

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// A TCP connection to "HOST:PORT" (IPv4), or -1.
inline int ConnectTo(const std::string& address) {
  const size_t colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One request on its own connection, read to the end of its reply.
// With a `body`, its Content-Length is sent as well.
inline HttpReply Http(const std::string& address, const std::string& method,
                      const std::string& path, const std::string& extra_headers = "",
                      const std::string& body = "") {
  HttpReply r;
  int fd = ConnectTo(address);
  if (fd < 0) return r;
  const std::string req = absl::StrCat(
      method, " ", path, " HTTP/1.1\r\nHost: ", address, "\r\n", extra_headers,
      body.empty() ? "" : absl::StrCat("Content-Length: ", body.size(), "\r\n"), "\r\n", body);
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return r;
  }
  // Read until the body's Content-Length has come (kj-http keeps the connection open for the
  // next request), or until ihsd closes it.
  std::string all;
  char buf[4096];
  for (;;) {
    const size_t end = all.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t length = 0;
      for (absl::string_view line : absl::StrSplit(all.substr(0, end), "\r\n")) {
        if (absl::ConsumePrefix(&line, "Content-Length: ")) (void)absl::SimpleAtoi(line, &length);
      }
      if (method == "HEAD" || all.size() >= end + 4 + length) break;
    }
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (end == std::string::npos) return r;
  r.head = all.substr(0, end);
  r.body = all.substr(end + 4);
  std::vector<std::string> first = absl::StrSplit(r.head.substr(0, r.head.find("\r\n")), ' ');
  if (first.size() >= 2) (void)absl::SimpleAtoi(first[1], &r.status);
  return r;
}

}  // namespace ihs

#endif  // IHS_TESTS_INTEGRATION_HTTP_CLIENT_H_
