// Rules about touchpoints that more than one part of ihs applies, so that they cannot drift
// apart: the timeline, the segments' `unanswered` and the generator's ground truth.
#ifndef IHS_SCHEMA_TOUCHPOINT_H_
#define IHS_SCHEMA_TOUCHPOINT_H_

#include "schema/event.capnp.h"

namespace ihs::schema {

// Whether a touchpoint waits for the company's answer (docs/projections.md "The timeline"): an
// inbound message, request or complaint, and a request or complaint made in public (a tweet at
// the company). A public message is a post to the world, not addressed to the company: it waits
// for nothing.
inline bool WaitsForAnswer(Direction d, TouchpointType t) {
  switch (t) {
    case TouchpointType::MESSAGE:
      return d == Direction::INBOUND;
    case TouchpointType::REQUEST:
    case TouchpointType::COMPLAINT:
      return d == Direction::INBOUND || d == Direction::PUBLIC;
    default:
      return false;
  }
}

}  // namespace ihs::schema

#endif  // IHS_SCHEMA_TOUCHPOINT_H_
