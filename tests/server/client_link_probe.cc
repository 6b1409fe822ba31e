// A service that uses ihs through the client library alone: built with ihs_client and nothing
// else of ihs, so that client_link_test can show what such a service links (no RocksDB).
#include <iostream>

#include "server/client.h"

int main() {
  ihs::client::ConnectOptions o;
  o.address = "unix:/nonexistent/ihsd.sock";
  o.token = "none";
  auto c = ihs::client::Client::Connect(o);
  std::cout << (c.ok() ? "connected" : std::string(c.status().message())) << "\n";
  return 0;
}
