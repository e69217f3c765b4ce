/*
 * main.c - vmseal, the command-line client of vmseald. Everything is in
 * the vmseal_cli_lib library (run.c), so that the tests reach it.
 */
#include "cli/run.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
