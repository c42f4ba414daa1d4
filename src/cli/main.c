/*
 * main.c: the `clens` command line, a table of subcommands. Each subcommand
 * lives in cmd_<name>.c and is a thin client of libclens.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_activations(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_pairs(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_study(int argc, char **argv);
int cmd_organism(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_capture(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_lens(int argc, char **argv);
int cmd_steer(int argc, char **argv);
int cmd_dynamics(int argc, char **argv);

static const struct {
    const char *name;
    cli_cmd_fn fn;
    const char *summary;
} commands[] = {
    {"info", cmd_info, "describe a model: architecture, sizes, dtype, hook names, memory"},
    {"logits", cmd_logits, "logits at every position of a token sequence, as .npy"},
    {"activations", cmd_activations, "dump hook-point activations of a token sequence as .npy files"},
    {"generate", cmd_generate, "greedy or sampled generation from token ids or text"},
    {"tokenize", cmd_tokenize, "text to token ids, byte-identical to Hugging Face tokenizers"},
    {"detokenize", cmd_detokenize, "token ids to text"},
    {"chat", cmd_chat, "render a model's chat template for a conversation"},
    {"pairs", cmd_pairs, "build (clean, corrupted) prompt pairs from MATH / GSM8K"},
    {"patch", cmd_patch, "final-token activation patching sweep over layers"},
    {"merge", cmd_merge, "merge the outputs of sharded patch runs"},
    {"compare", cmd_compare, "compare recovery profiles of runs and the seed, with CIs and reports"},
    {"study", cmd_study, "run a multi-model patching study from a study file, then compare"},
    {"organism", cmd_organism, "model organisms: traces, tokenizer, behaviour, recipes"},
    {"train", cmd_train, "train a Qwen2 / OLMo-3 model in C on GSM8K-format traces (HF folders out)"},
    {"capture", cmd_capture, "activations of (clean, corrupted) pairs as .npy + index.json"},
    {"probe", cmd_probe, "difference-of-means and logistic probes per layer, pair-grouped CV"},
    {"transfer", cmd_transfer, "apply one model's probes to another's activations (affine map if widths differ)"},
    {"lens", cmd_lens, "logit lens: top tokens and correction log-mass per layer"},
    {"steer", cmd_steer, "steer or ablate a direction (dose-response, controls, side effects); control vectors"},
    {"dynamics", cmd_dynamics, "patching across a checkpoint series: gradual or transition, with fits"},
};

static void usage(FILE *f)
{
    fprintf(f, "clens %s: mechanistic-interpretability experiments on Hugging Face models\n\n"
               "usage: clens <command> [options]   (clens <command> --help for details)\n\n"
               "commands:\n", CLENS_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nexit codes: 0 success, 1 error (bad input, model, I/O), 2 usage error\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) { usage(stderr); return CLI_EXIT_USAGE; }
    if (cli_is_help(argv[1])) { usage(stdout); return CLI_EXIT_OK; }
    if (strcmp(argv[1], "--version") == 0) { printf("clens %s\n", CLENS_VERSION); return 0; }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "clens: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
