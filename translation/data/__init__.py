"""WMT English-German for the translation benchmark: GNMT's WMT16 recipe and the Transformer's WMT17 recipe.

On-disk layout (``build/translation/wmt16_de_en`` by default; the embedded mini set has the same top-level files)::

    <root>/train.en, train.de                    the training corpora, concatenated, a sentence a line
    <root>/newstest2014-deen-src.en.sgm          the test set as WMT ships it (SGM), and its plain text:
    <root>/newstest2014-deen-ref.de.sgm              newstest2014.en, newstest2014.de (3,003 sentences)
    <root>/newstest2015-deen-{src.de,ref.en}.sgm GNMT's dev sets (wmt16; wmt17 has newstest2013.en/.de instead)
    <root>/newstest2016-deen-{src.de,ref.en}.sgm
    <root>/train.tok.clean.bpe.32000.en, ...     the processed files, named as the references name them
    <root>/bpe.32000, vocab.bpe.32000            GNMT's BPE codes and vocabulary (wmt17: spm.ende.32768.model)
    <root>/manifest.json                         every file above with its size and sha256, written last
    <root>/archives/*.tgz                        the downloaded archives (kept unless --delete-archives)
    <root>/data/<archive>/                       the files taken out of each archive

``wmt``: the processing as plain functions (SGM, Moses tokenization, cleaning, BPE, sentencepiece, ``prepare``);
``wmt_files``: fetching a recipe's archives and verifying a folder; ``layout``: this folder's manifest
(wmt_files.json) and default folders; ``cli``: ``download`` and ``verify``, behind download_dataset.sh and
verify_dataset.sh. No ML framework is imported.
"""

from translation.data.layout import DATA_DIRS, DATASETS, FILES_MANIFEST

__all__ = ["DATASETS", "DATA_DIRS", "FILES_MANIFEST"]
