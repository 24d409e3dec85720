#!/bin/sh
# echo: the request body comes back unchanged.
exec cat
