#!/bin/sh
# on-order: says which subject the event came on, then the event's body.
echo "order event on $SKIFF_EVENT_SUBJECT:"
exec cat
