% rebase('admin/layout')
<h1>Pipeline runs</h1>
% include('admin/trigger')
% include('admin/runs_table')
