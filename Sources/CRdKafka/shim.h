// librdkafka's C API and its in-process mock cluster, from Debian's librdkafka-dev (pkg-config `rdkafka`).
// Only TriplineKafka imports this module.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
