"""Files in and out: reading CSV/XLSX into text cells, writing the results sheets."""
